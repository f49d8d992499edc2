"""The hub's own CA: name constraints a real verifier enforces, the server certificate's profile, renewal on an
injected clock, private key files, and clear errors for unusable files."""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from qilu_hub.tls import LEAF_VALIDITY, RENEW_BEFORE, HubNames, TlsError, TlsFiles, issue_leaf

T0 = dt.datetime(2031, 5, 17, 9, 0, tzinfo=dt.UTC)  # any instant: nothing here reads the wall clock
NAMES = HubNames("qilutest", (ipaddress.ip_address("10.77.1.5"),), (ipaddress.ip_network("10.77.1.0/24"),))


@pytest.fixture
def files(tmp_path: Path) -> TlsFiles:
    tls = TlsFiles(tmp_path)
    assert tls.refresh(NAMES, T0) == "new CA"
    return tls


def _verify(ca: x509.Certificate, leaf: x509.Certificate, name: str, at: dt.datetime) -> None:
    """cryptography's RFC 5280 / CA-Browser-Forum verifier (the Rust one, which enforces name constraints)."""
    builder = PolicyBuilder().store(Store([ca])).time(at)
    try:
        subject: x509.verification.Subject = x509.IPAddress(ipaddress.ip_address(name))  # type: ignore[assignment]
    except ValueError:
        subject = x509.DNSName(name)  # type: ignore[assignment]
    builder.build_server_verifier(subject).verify(leaf, [])


def test_ca_is_name_constrained_and_the_leaf_fits_browser_rules(files: TlsFiles) -> None:
    ca, leaf = files.ca_certificate(), files.server_certificate()
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    permitted = {str(n.value) for n in constraints.value.permitted_subtrees or ()}
    assert permitted == {"qilutest", "qilutest.local", "localhost", "10.77.1.0/24", "127.0.0.0/8", "::1/128"}
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= dt.timedelta(days=398)
    san = {str(n.value) for n in leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value}
    assert san == {"qilutest", "qilutest.local", "localhost", "10.77.1.5", "127.0.0.1", "::1"}
    for name in ("qilutest.local", "10.77.1.5", "localhost"):
        _verify(ca, leaf, name, T0 + dt.timedelta(days=1))


def test_a_certificate_for_another_name_signed_by_the_ca_is_rejected(files: TlsFiles, tmp_path: Path) -> None:
    """A stolen CA key mints a certificate for a bank and for a public address: verifiers refuse both."""
    ca_key, ca = files.ca()
    forged = issue_leaf(ca_key, ca, [x509.DNSName("bank.example.com")], T0)[1]
    forged_ip = issue_leaf(ca_key, ca, [x509.IPAddress(ipaddress.ip_address("8.8.8.8"))], T0)[1]
    with pytest.raises(VerificationError):
        _verify(ca, forged, "bank.example.com", T0 + dt.timedelta(days=1))
    with pytest.raises(VerificationError):
        _verify(ca, forged_ip, "8.8.8.8", T0 + dt.timedelta(days=1))
    # OpenSSL too (what Python's ssl module and `openssl s_client` use).
    from cryptography.hazmat.primitives.serialization import Encoding
    (tmp_path / "forged.pem").write_bytes(forged.public_bytes(Encoding.PEM))
    (tmp_path / "good.pem").write_bytes(files.server_certificate().public_bytes(Encoding.PEM))
    at = str(int((T0 + dt.timedelta(days=1)).timestamp()))
    bad = subprocess.run(["openssl", "verify", "-attime", at, "-CAfile", str(files.ca_cert_path),
                          str(tmp_path / "forged.pem")], capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "permitted subtree violation" in (bad.stdout + bad.stderr)
    good = subprocess.run(["openssl", "verify", "-attime", at, "-CAfile", str(files.ca_cert_path),
                           str(tmp_path / "good.pem")], capture_output=True, text=True, timeout=30)
    assert good.returncode == 0, good.stdout + good.stderr


def test_renewal_follows_the_injected_clock_and_the_hubs_names(files: TlsFiles) -> None:
    ca_before = files.ca_cert_path.read_bytes()
    first = files.server_certificate().serial_number
    assert files.refresh(NAMES, T0 + dt.timedelta(days=300)) is None
    due = T0 + LEAF_VALIDITY - RENEW_BEFORE + dt.timedelta(days=1)
    assert "expires" in (files.refresh(NAMES, due) or "")
    second = files.server_certificate()
    assert second.serial_number != first and second.not_valid_after_utc > due + dt.timedelta(days=390)
    moved = HubNames("qilutest", (ipaddress.ip_address("10.77.1.9"),), NAMES.networks)
    assert files.refresh(moved, due) == "the hub's names or addresses changed"
    assert "10.77.1.9" in {str(n.value) for n in files.server_certificate().extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value}
    # An address outside the CA's networks is left out of the certificate (the CA may not certify it).
    elsewhere = HubNames("qilutest", (ipaddress.ip_address("172.20.0.4"),), (ipaddress.ip_network("172.20.0.0/16"),))
    files.refresh(elsewhere, due)
    assert "172.20.0.4" not in {str(n.value) for n in files.server_certificate().extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value}
    assert files.ca_cert_path.read_bytes() == ca_before  # the CA never changed


def test_keys_are_owner_only(files: TlsFiles) -> None:
    assert stat.S_IMODE(files.directory.stat().st_mode) == 0o700
    for key in (files.ca_key_path, files.key_path):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_an_unreadable_ca_key_is_an_error_naming_the_file_and_is_never_replaced(files: TlsFiles) -> None:
    files.ca_key_path.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    before = files.ca_key_path.read_bytes()
    with pytest.raises(TlsError, match=r"ca\.key.*rotate --ca"):
        files.refresh(NAMES, T0)
    assert files.ca_key_path.read_bytes() == before


def test_an_unreadable_server_key_is_issued_again_under_the_same_ca(files: TlsFiles) -> None:
    ca_before = files.ca_cert_path.read_bytes()
    files.key_path.write_bytes(b"\x00garbage")
    assert "server key cannot be read" in (files.refresh(NAMES, T0) or "")
    assert files.ca_cert_path.read_bytes() == ca_before
    files.server_context()  # loads: key and certificate belong together again


def test_rotate_ca_keeps_the_old_one_aside(files: TlsFiles) -> None:
    old = files.ca_cert_path.read_bytes()
    files.rotate(NAMES, T0, new_ca=True)
    assert files.ca_cert_path.with_name("ca.crt.old").read_bytes() == old
    assert files.ca_cert_path.read_bytes() != old
    assert files.refresh(NAMES, T0) is None  # the new leaf belongs to the new CA


def test_cli_init_show_rotate(tmp_path: Path) -> None:
    import os
    import sys

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "qilu_hub", *args, "--config", str(tmp_path)],
                              capture_output=True, text=True, timeout=60, env=os.environ)

    missing = cli("tls", "show")
    assert missing.returncode == 1 and "tls init" in missing.stderr
    init = cli("tls", "init")
    assert init.returncode == 0, init.stderr
    ca = TlsFiles(tmp_path).ca_certificate()
    assert ca.fingerprint(ca.signature_hash_algorithm).hex(":").upper() in init.stdout  # type: ignore[arg-type]
    served_before = TlsFiles(tmp_path).server_certificate().serial_number
    rotate = cli("tls", "rotate")
    assert rotate.returncode == 0, rotate.stderr
    assert TlsFiles(tmp_path).server_certificate().serial_number != served_before
    assert TlsFiles(tmp_path).ca_certificate() == ca


def test_the_ca_is_backed_up_and_restored_owner_only(files: TlsFiles, tmp_path: Path) -> None:
    from qilu_hub.backup import create_backup, restore_backup
    from qilu_hub.config import load_config
    from qilu_hub.storage import RegistryStore

    RegistryStore(tmp_path / "registry.db").close()
    archive = create_backup(tmp_path, tmp_path / "backups", load_config(tmp_path))
    key = files.ca_key_path.read_bytes()
    files.ca_key_path.unlink()
    assert "tls/ca.key" in restore_backup(archive, tmp_path)
    assert files.ca_key_path.read_bytes() == key
    assert stat.S_IMODE(files.ca_key_path.stat().st_mode) == 0o600
