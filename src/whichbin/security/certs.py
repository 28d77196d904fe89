"""A local certificate authority for MQTT over TLS: the CA, the broker's server
certificate and one client certificate per device or service (``whichbin certs``).

Keys are ECDSA P-256, written mode 0600; certificates are PEM. An existing CA in the
folder is reused, so new devices can be added later; a CA is created only when neither
``ca.crt`` nor ``ca.key`` is there (a CA certificate whose key is kept offline is never
replaced).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from whichbin.errors import ConfigError

CA_NAME = "ca"
BROKER_NAME = "broker"
_CERT_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")  # a file name and a common name


@dataclass(frozen=True)
class Issued:
    """The files of one certificate."""

    name: str
    cert: Path
    key: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "whichbin"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(subject: x509.Name, issuer: x509.Name, public_key, days: int, now: dt.datetime):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
    )


class LocalCA:
    """The CA in ``folder`` (``ca.crt``, ``ca.key``); created if absent."""

    def __init__(self, folder: Path, now: dt.datetime | None = None, days: int = 3650) -> None:
        self.folder = Path(folder)
        self.now = now or dt.datetime.now(dt.UTC)
        self.days = days
        self.cert_path = self.folder / f"{CA_NAME}.crt"
        self.key_path = self.folder / f"{CA_NAME}.key"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            have_cert, have_key = self.cert_path.exists(), self.key_path.exists()
            if have_cert and have_key:
                self._load()
            elif have_cert or have_key:
                there, missing = (
                    (self.cert_path, self.key_path)
                    if have_cert
                    else (self.key_path, self.cert_path)
                )
                raise ConfigError(
                    f"{there} is there but {missing} is not: put the CA's other file back (a CA "
                    "key kept offline is needed to issue certificates), or remove both for a new CA"
                )
            else:
                self._create()
        except OSError as e:
            raise ConfigError(
                f"{self.folder}: cannot use it for certificates ({e.strerror})"
            ) from e

    def _load(self) -> None:
        try:
            self.cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        except ValueError as e:
            raise ConfigError(f"{self.cert_path}: not a PEM CA certificate") from e
        try:
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), None)
        except TypeError as e:  # encrypted: `whichbin certs` writes it unencrypted
            raise ConfigError(
                f"{self.key_path}: the CA key is encrypted; decrypt it (openssl pkey -in "
                f"{self.key_path.name} -out ...) for `whichbin certs`"
            ) from e
        except (ValueError, UnsupportedAlgorithm) as e:
            raise ConfigError(f"{self.key_path}: not a usable PEM private key") from e
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"{self.key_path}: not an EC key made by `whichbin certs`")
        self.key = key

    def _create(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = _name("whichbin local CA")
        self.cert = (
            _builder(name, name, self.key.public_key(), self.days, self.now)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        _write_key(self.key_path, self.key)
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self, name: str, hosts: list[str] | None = None, days: int = 825, server: bool = False
    ) -> Issued:
        """Write ``<name>.crt`` and ``<name>.key``: a server certificate for ``hosts`` (DNS
        names or IP addresses), or a client certificate whose common name is ``name``."""
        check_name(name)
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            _builder(_name(name), self.cert.subject, key.public_key(), days, self.now)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if hosts:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False
            )
        cert = builder.sign(self.key, hashes.SHA256())
        issued = Issued(name, self.folder / f"{name}.crt", self.folder / f"{name}.key")
        try:
            _write_key(issued.key, key)
            issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        except OSError as e:
            raise ConfigError(f"{e.filename or self.folder}: cannot write it ({e.strerror})") from e
        return issued


def check_name(name: str) -> None:
    """Raises ConfigError unless ``name`` is 1-64 letters, digits, '-', '_', '.' (not
    starting with '.')."""
    if not _CERT_NAME.fullmatch(name):
        raise ConfigError(
            f"certificate name {name!r}: use 1-64 letters, digits, '-', '_', '.' (not first)"
        )


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def create_certificates(
    folder: Path, broker_hosts: list[str], clients: list[str], now: dt.datetime | None = None
) -> list[Issued]:
    """The CA (reused if present), a broker certificate for ``broker_hosts`` (if given) and
    a client certificate per name in ``clients``."""
    reserved = {CA_NAME, BROKER_NAME} & set(clients)
    if reserved:
        raise ConfigError(f"client name {sorted(reserved)[0]!r} is reserved: pick another")
    for name in clients:  # before anything is written
        check_name(name)
    ca = LocalCA(folder, now)
    out = [Issued(CA_NAME, ca.cert_path, ca.key_path)]
    if broker_hosts:
        out.append(ca.issue(BROKER_NAME, broker_hosts, server=True))
    out += [ca.issue(c) for c in clients]
    return out
