"""The hub's own certificate authority for HTTPS on the LAN (``hub.tls: auto``).

WebXR, and every other browser API a headset needs, runs only in a secure context, and a hub on a home
network has no public name a public CA would certify. So the hub makes a small CA of its own, once, and
issues its server certificate from it; a household trusts the CA once per phone or headset.

The CA is **name-constrained** (RFC 5280 §4.2.1.10, critical): it may only certify the hub's host name,
``<host>.local``, ``localhost`` and addresses in the hub's own LAN networks and loopback. A verifier that
honours constraints in trust anchors (Chrome's and Android's current verifiers, OpenSSL) rejects anything
else it signs, so the CA key, stolen from the hub, cannot mint a certificate for someone else's site.

The server certificate lives 397 days (Chrome and Apple cap server certificates at 398 days; one day of
margin) and is re-issued by :meth:`TlsFiles.refresh` when fewer than :data:`RENEW_BEFORE` remain, when the
hub's names or addresses changed, or when it is missing or unreadable (it is derived data: nothing is lost).
The CA key is the one thing that is never replaced behind the user's back: a missing or unreadable CA key
is a :class:`TlsError`, fixed by restoring it or by ``qilu-hub tls rotate --ca`` (after which every device
must trust the new CA). Keys are written ``0600`` into ``CONFIG_DIR/tls/`` (``0700``).

Every function that looks at validity takes ``now``: callers pass the wall clock, tests their own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import logging
import os
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .file_modes import PRIVATE_DIR, write_private

__all__ = ["CA_VALIDITY", "LEAF_VALIDITY", "RENEW_BEFORE", "HubNames", "TlsError", "TlsFiles", "lan_names",
           "spki_sha256"]

_LOGGER = logging.getLogger(__name__)

TLS_DIR = "tls"
CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY = "ca.crt", "ca.key", "server.crt", "server.key"
LEAF_VALIDITY = dt.timedelta(days=397)
CA_VALIDITY = dt.timedelta(days=3650)
RENEW_BEFORE = dt.timedelta(days=30)
CLOCK_SKEW = dt.timedelta(hours=1)  # not_before this far back: a headset whose clock runs behind still accepts it

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
LOOPBACK_NETWORKS: tuple[IpNetwork, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


class TlsError(Exception):
    """A TLS file that cannot be used; the message names the file and what to do."""


@dataclass(frozen=True, slots=True)
class HubNames:
    """What the hub is called on the LAN: DNS names and addresses for the certificate, networks for the CA."""

    hostname: str
    addresses: tuple[IpAddress, ...] = ()
    networks: tuple[IpNetwork, ...] = ()
    extra_dns: tuple[str, ...] = field(default=())

    @property
    def dns_names(self) -> tuple[str, ...]:
        host = self.hostname.lower().rstrip(".").removesuffix(".local")
        names = [host, f"{host}.local", "localhost", *(n.lower() for n in self.extra_dns)]
        return tuple(dict.fromkeys(names))  # ordered, no duplicates

    @property
    def all_addresses(self) -> tuple[IpAddress, ...]:
        loopback: tuple[IpAddress, ...] = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
        return tuple(dict.fromkeys((*self.addresses, *loopback)))

    @property
    def all_networks(self) -> tuple[IpNetwork, ...]:
        return tuple(dict.fromkeys((*self.networks, *LOOPBACK_NETWORKS)))


def lan_names(hostname: str | None = None) -> HubNames:
    """This machine's names and its interfaces' addresses (link-local ones left out: URLs cannot carry them)."""
    import ifaddr  # zeroconf's own interface lister

    addresses: list[IpAddress] = []
    networks: list[IpNetwork] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            raw = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            try:
                address = ipaddress.ip_address(raw)
            except ValueError:
                continue
            if address.is_link_local or address.is_loopback or address.is_multicast:
                continue
            addresses.append(address)
            networks.append(ipaddress.ip_network(f"{address}/{ip.network_prefix}", strict=False))
    return HubNames(hostname or socket.gethostname(), tuple(addresses), tuple(networks))


def spki_sha256(cert: x509.Certificate) -> bytes:
    """SHA-256 of the certificate's SubjectPublicKeyInfo (what Chrome's SPKI lists and HPKP pin)."""
    der = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(der)
    return digest.finalize()


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint as people compare them: upper-case hex pairs joined by colons."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "qilu-hub"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _permitted(cert: x509.Certificate) -> x509.NameConstraints | None:
    try:
        return cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return None


def new_ca(names: HubNames, now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A CA certificate for this hub, valid 10 years, allowed to certify only the hub's names and networks."""
    key = ec.generate_private_key(ec.SECP256R1())
    serial = x509.random_serial_number()
    # The serial in the name keeps two hubs' (or a rotated hub's) CAs apart in a device's list of trusted CAs.
    subject = _name(f"qilu-hub local CA {names.dns_names[0]} {serial % 10**8:08d}")
    permitted: list[x509.GeneralName] = [x509.DNSName(n) for n in names.dns_names]
    permitted += [x509.IPAddress(network) for network in names.all_networks]
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(public).serial_number(serial)
        .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _allowed_by(constraints: x509.NameConstraints | None, name: x509.GeneralName) -> bool:
    """Whether the CA's permitted subtrees cover ``name`` (the RFC 5280 rules, for the two kinds we use)."""
    if constraints is None or constraints.permitted_subtrees is None:
        return True
    for subtree in constraints.permitted_subtrees:
        if isinstance(name, x509.DNSName) and isinstance(subtree, x509.DNSName) and (
                name.value == subtree.value or name.value.endswith("." + subtree.value)):
            return True
        if isinstance(name, x509.IPAddress) and isinstance(subtree, x509.IPAddress):
            network = subtree.value
            if isinstance(network, ipaddress.IPv4Network | ipaddress.IPv6Network) and name.value in network:
                return True
    return False


def issue_leaf(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, san: Iterable[x509.GeneralName],
               now: dt.datetime, *, validity: dt.timedelta = LEAF_VALIDITY
               ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A server certificate for ``san`` signed by the CA (never outliving it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    names = list(san)
    first = next((n.value for n in names if isinstance(n, x509.DNSName)), "qilu-hub")
    not_after = min(now + validity, ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(first)).issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _pem_cert(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


class TlsFiles:
    """The CA and server certificate in ``CONFIG_DIR/tls/``: created, checked, re-issued and loaded into SSL."""

    def __init__(self, config_dir: Path | str) -> None:
        self.directory = Path(config_dir) / TLS_DIR
        self.ca_cert_path = self.directory / CA_CERT
        self.ca_key_path = self.directory / CA_KEY
        self.cert_path = self.directory / SERVER_CERT
        self.key_path = self.directory / SERVER_KEY

    # -- reading ---------------------------------------------------------------------------
    def has_ca(self) -> bool:
        return self.ca_cert_path.exists() or self.ca_key_path.exists()

    def ca_certificate(self) -> x509.Certificate:
        return self._read_cert(self.ca_cert_path, "the CA certificate")

    def server_certificate(self) -> x509.Certificate:
        return self._read_cert(self.cert_path, "the server certificate")

    def _read_cert(self, path: Path, what: str) -> x509.Certificate:
        try:
            return x509.load_pem_x509_certificate(path.read_bytes())
        except FileNotFoundError as err:
            raise TlsError(f"{path}: {what} is missing") from err
        except (OSError, ValueError) as err:
            raise TlsError(f"{path}: {what} cannot be read ({err})") from err

    def _read_key(self, path: Path, what: str) -> ec.EllipticCurvePrivateKey:
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except FileNotFoundError as err:
            raise TlsError(f"{path}: {what} is missing") from err
        except (OSError, ValueError, TypeError) as err:
            raise TlsError(f"{path}: {what} cannot be read ({type(err).__name__}: {err})") from err
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TlsError(f"{path}: {what} is not an EC key")
        return key

    def ca(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """The CA's key and certificate, checked to belong together; a :class:`TlsError` says what to do."""
        fix = ("restore it from a backup, or run `qilu-hub tls rotate --ca` for a new CA "
               "(every phone and headset must then trust the new one)")
        try:
            key = self._read_key(self.ca_key_path, "the CA key")
            cert = self.ca_certificate()
        except TlsError as err:
            raise TlsError(f"{err}; {fix}") from err
        if cert.public_key() != key.public_key():
            raise TlsError(f"{self.ca_key_path} does not belong to {self.ca_cert_path}; {fix}")
        return key, cert

    # -- writing ---------------------------------------------------------------------------
    def _write(self, key_path: Path, key: ec.EllipticCurvePrivateKey, cert_path: Path, cert: x509.Certificate
               ) -> None:
        self.directory.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        write_private(key_path, _pem_key(key))  # key first: a certificate never points at a key not written yet
        tmp = cert_path.with_name(cert_path.name + ".tmp")
        tmp.write_text(_pem_cert(cert), encoding="ascii")
        tmp.replace(cert_path)

    def create_ca(self, names: HubNames, now: dt.datetime) -> x509.Certificate:
        key, cert = new_ca(names, now)
        self._write(self.ca_key_path, key, self.ca_cert_path, cert)
        _LOGGER.info("Created the hub's local CA (SHA-256 %s)", fingerprint(cert))
        return cert

    def wanted_names(self, names: HubNames, ca_cert: x509.Certificate) -> list[x509.GeneralName]:
        """The server certificate's SANs: the hub's names and addresses the CA may certify."""
        constraints = _permitted(ca_cert)
        wanted: list[x509.GeneralName] = [x509.DNSName(n) for n in names.dns_names]
        wanted += [x509.IPAddress(a) for a in names.all_addresses]
        allowed = [n for n in wanted if _allowed_by(constraints, n)]
        left_out = [str(n.value) for n in wanted if n not in allowed]
        if left_out:
            _LOGGER.warning("The hub's CA may not certify %s (the hub moved to another network?): the server "
                            "certificate leaves them out; `qilu-hub tls rotate --ca` makes a CA for the names "
                            "it has now", ", ".join(left_out))
        return allowed

    def issue(self, names: HubNames, now: dt.datetime) -> x509.Certificate:
        ca_key, ca_cert = self.ca()
        key, cert = issue_leaf(ca_key, ca_cert, self.wanted_names(names, ca_cert), now)
        self._write(self.key_path, key, self.cert_path, cert)
        return cert

    # -- policy ----------------------------------------------------------------------------
    def renewal_reason(self, names: HubNames, now: dt.datetime) -> str | None:
        """Why the server certificate must be issued again now, or None while it is good."""
        _, ca_cert = self.ca()
        try:
            cert = self.server_certificate()
            key = self._read_key(self.key_path, "the server key")
        except TlsError as err:
            return str(err)
        if cert.public_key() != key.public_key():
            return f"{self.key_path} does not belong to {self.cert_path}"
        if cert.issuer != ca_cert.subject or _aki(cert) != _ski(ca_cert):
            return "it was not issued by the current CA"
        if cert.not_valid_after_utc - now < RENEW_BEFORE:
            return f"it expires on {cert.not_valid_after_utc:%Y-%m-%d}"
        try:
            current = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
        except x509.ExtensionNotFound:
            current = set()
        if current != set(self.wanted_names(names, ca_cert)):
            return "the hub's names or addresses changed"
        return None

    def refresh(self, names: HubNames, now: dt.datetime, *, create_ca: bool = True) -> str | None:
        """Make sure a CA and a current server certificate exist; returns why one was (re)issued, if it was."""
        if not self.has_ca():
            if not create_ca:
                raise TlsError(f"{self.ca_cert_path}: no CA yet; run `qilu-hub tls init`")
            self.create_ca(names, now)
            reason: str | None = "new CA"
        else:
            reason = self.renewal_reason(names, now)
        if reason is not None:
            cert = self.issue(names, now)
            _LOGGER.info("Issued the hub's server certificate (%s), valid until %s", reason,
                         f"{cert.not_valid_after_utc:%Y-%m-%d}")
        return reason

    def rotate(self, names: HubNames, now: dt.datetime, *, new_ca: bool = False) -> x509.Certificate:
        """A new server certificate now; with ``new_ca`` first a new CA (the old one is kept as ``*.old``)."""
        if new_ca:
            for path in (self.ca_cert_path, self.ca_key_path):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(path, path.with_name(path.name + ".old"))
            self.create_ca(names, now)
        return self.issue(names, now)

    # -- serving ---------------------------------------------------------------------------
    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.load_into(context)
        return context

    def load_into(self, context: ssl.SSLContext) -> None:
        """Load the server certificate (with the CA after it) into ``context``; new handshakes use it."""
        chain = self.directory / "chain.pem"
        try:
            # The chain file is public data, rewritten each time: the served chain always matches the key.
            chain.write_text(self.cert_path.read_text(encoding="ascii") + self.ca_cert_path.read_text(
                encoding="ascii"), encoding="ascii")
            context.load_cert_chain(chain, self.key_path)
        except (OSError, ssl.SSLError, UnicodeError) as err:
            raise TlsError(f"{self.cert_path}: cannot be loaded with {self.key_path} ({err})") from err

    def ca_der(self) -> bytes:
        return self.ca_certificate().public_bytes(serialization.Encoding.DER)

    def ca_pem(self) -> bytes:
        return self.ca_certificate().public_bytes(serialization.Encoding.PEM)

    def describe(self) -> dict[str, object]:
        """What ``qilu-hub tls show`` prints and ``GET /api/tls`` returns."""
        ca = self.ca_certificate()
        constraints = _permitted(ca)
        info: dict[str, object] = {
            "ca_subject": ca.subject.rfc4514_string(),
            "ca_sha256": fingerprint(ca),
            "ca_not_after": ca.not_valid_after_utc.isoformat(),
            "ca_permitted": [str(n.value) for n in (constraints.permitted_subtrees or [])] if constraints else [],
        }
        with contextlib.suppress(TlsError):
            leaf = self.server_certificate()
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            info.update({"server_not_after": leaf.not_valid_after_utc.isoformat(),
                         "server_names": [str(n.value) for n in san],
                         "server_sha256": fingerprint(leaf)})
        return info


def _ski(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def _aki(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        return None
