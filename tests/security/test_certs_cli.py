"""``whichbin certs create``: a local CA, a broker certificate and client certificates."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from whichbin.cli.main import app

runner = CliRunner()


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_create_issues_broker_and_client_certificates_from_one_ca(tmp_path: Path) -> None:
    folder = tmp_path / "certs"
    args = ["certs", "create", str(folder), "--broker-host", "127.0.0.1", "--broker-host",
            "broker.local", "--client", "cam1", "--client", "registry", "--json"]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    names = [d["name"] for d in json.loads(res.stdout)]
    assert names == ["ca", "broker", "cam1", "registry"]
    ca = load(folder / "ca.crt")
    for name in names:
        assert stat.S_IMODE((folder / f"{name}.key").stat().st_mode) == 0o600
    broker, cam1 = load(folder / "broker.crt"), load(folder / "cam1.crt")
    for cert in (broker, cam1):
        cert.verify_directly_issued_by(ca)
    san = broker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "broker.local" in san.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    eku = cam1.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    assert cam1.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "cam1"

    # A later run reuses the CA: devices added later still chain to it.
    before = (folder / "ca.crt").read_bytes()
    assert runner.invoke(app, ["certs", "create", str(folder), "--client", "cam2"]).exit_code == 0
    assert (folder / "ca.crt").read_bytes() == before
    load(folder / "cam2.crt").verify_directly_issued_by(ca)


def test_bad_names_are_one_line_errors(tmp_path: Path) -> None:
    res = runner.invoke(app, ["certs", "create", str(tmp_path), "--client", "ca"])
    assert res.exit_code == 1 and "reserved" in res.output and res.output.count("\n") == 1
    res = runner.invoke(app, ["certs", "create", str(tmp_path), "--client", "../x"])
    assert res.exit_code == 1 and "certificate name" in res.output


def test_help_has_an_example() -> None:
    res = runner.invoke(app, ["certs", "create", "--help"])
    assert res.exit_code == 0 and "Example" in res.output and "whichbin certs" in res.output
