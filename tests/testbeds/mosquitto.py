"""A private Mosquitto broker for tests: loopback only, generated config, optional TLS and passwords.

Runs Debian's ``/usr/sbin/mosquitto`` (never the system service) on free ports of
127.0.0.1 with its own config, persistence directory and log, so tests can stop
and restart it and keep sessions and retained messages across the restart.

Three listeners:

* ``port``: plain MQTT, anonymous;
* ``tls_port``: MQTT over TLS with a certificate for 127.0.0.1 signed by a
  throwaway CA made with ``openssl``, and a password file made with
  ``mosquitto_passwd`` (anonymous clients refused);
* ``mtls_port``: MQTT over TLS that requires a client certificate from that CA.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.testbeds.ports import listen_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"

USERNAME = "hub"
PASSWORD = "s3cret-test-password"


def free_port() -> int:
    """A port for Mosquitto to listen on (see tests/testbeds/ports.py for why not port 0's)."""
    return listen_port()


def _run(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(args, check=True, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_test_ca(directory: Path) -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1 (SAN IP and DNS localhost)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "server.ext"
    _run(OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=qilu test CA",
         "-keyout", str(ca_key), "-out", str(ca_crt))
    _run(OPENSSL, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(csr))
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    _run(OPENSSL, "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
         "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(crt))
    # A client certificate from the same CA, for brokers that authenticate clients by certificate.
    client_key, client_csr, client_crt = directory / "client.key", directory / "client.csr", directory / "client.crt"
    client_ext = directory / "client.ext"
    _run(OPENSSL, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=qilu-test-hub",
         "-keyout", str(client_key), "-out", str(client_csr))
    client_ext.write_text("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n")
    _run(OPENSSL, "x509", "-req", "-in", str(client_csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
         "-CAcreateserial", "-days", "2", "-extfile", str(client_ext), "-out", str(client_crt))
    return {"ca": ca_crt, "cert": crt, "key": key, "client_cert": client_crt, "client_key": client_key}


_SHARED_CERTS: dict[str, Path] = {}


def shared_test_ca() -> dict[str, Path]:
    """One CA and certificate set per process: RSA key generation costs about a second on the gateway."""
    if not _SHARED_CERTS:
        directory = Path(tempfile.mkdtemp(prefix="qilu-test-ca-"))
        atexit.register(shutil.rmtree, directory, True)
        _SHARED_CERTS.update(make_test_ca(directory))
    return dict(_SHARED_CERTS)


class Mosquitto:
    """One broker process; ``start``/``stop``/``restart`` keep the same ports and persistence store."""

    def __init__(self, directory: Path, *, tls: bool = True, persistence: bool = True) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.mtls_port = free_port() if tls else None
        self.persistence = persistence
        self.process: subprocess.Popen[bytes] | None = None
        self.username, self.password = USERNAME, PASSWORD
        self.certs: dict[str, Path] = shared_test_ca() if tls else {}
        self.config_file = self.directory / "mosquitto.conf"
        self.log_file = self.directory / "mosquitto.log"
        self._write_config()

    def _write_config(self) -> None:
        store = self.directory / "store"
        store.mkdir(exist_ok=True)
        lines = [
            "per_listener_settings true",
            "user root",  # run as whoever started us; do not drop to the mosquitto account
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {store}/",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "max_queued_messages 10000",
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
        ]
        if self.tls_port is not None:
            passwd = self.directory / "passwd"
            passwd.unlink(missing_ok=True)
            _run(MOSQUITTO_PASSWD, "-b", "-c", str(passwd), self.username, self.password)
            lines += [
                f"listener {self.tls_port} 127.0.0.1",
                f"cafile {self.certs['ca']}",
                f"certfile {self.certs['cert']}",
                f"keyfile {self.certs['key']}",
                "allow_anonymous false",
                f"password_file {passwd}",
                f"listener {self.mtls_port} 127.0.0.1",
                f"cafile {self.certs['ca']}",
                f"certfile {self.certs['cert']}",
                f"keyfile {self.certs['key']}",
                "require_certificate true",
                "use_identity_as_username true",
                "allow_anonymous false",
            ]
        self.config_file.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 10.0) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config_file)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        ports = [p for p in (self.port, self.tls_port, self.mtls_port) if p is not None]
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"mosquitto exited with {self.process.returncode}: {err}\n{self.log()}")
            if all(self._listening(p) for p in ports):
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen within {timeout}s:\n{self.log()}")

    @staticmethod
    def _listening(port: int) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
        return False

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: Mosquitto writes its persistence store (sessions, retained, queued) and exits."""
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def available() -> bool:
    return os.path.exists(MOSQUITTO) and os.path.exists(MOSQUITTO_PASSWD) and os.path.exists(OPENSSL)
