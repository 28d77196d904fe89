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


def one_line_error(res) -> str:  # noqa: ANN001
    assert res.exit_code == 1, res.output
    assert res.output.count("\n") == 1 and "Traceback" not in res.output, res.output
    return res.output


def test_names_are_letters_digits_dash_underscore_dot(tmp_path: Path) -> None:
    for bad in ("a b", "a\\b", "a\x00b", ".hidden", "x" * 65, ""):
        out = one_line_error(
            runner.invoke(app, ["certs", "create", str(tmp_path), "--client", bad])
        )
        assert "certificate name" in out
    assert not (tmp_path / "ca.crt").exists()  # refused before anything is written
    ok = runner.invoke(app, ["certs", "create", str(tmp_path), "--client", "cam-1_b.x"])
    assert ok.exit_code == 0, ok.output


def test_a_ca_is_never_replaced_when_one_of_its_files_is_missing(tmp_path: Path) -> None:
    create = ["certs", "create", str(tmp_path), "--client", "cam1"]
    assert runner.invoke(app, create).exit_code == 0
    cert = (tmp_path / "ca.crt").read_bytes()
    key = (tmp_path / "ca.key").read_bytes()
    (tmp_path / "ca.key").unlink()  # the CA key kept offline
    out = one_line_error(runner.invoke(app, create))
    assert "ca.key" in out and not (tmp_path / "ca.key").exists()
    assert (tmp_path / "ca.crt").read_bytes() == cert
    (tmp_path / "ca.key").write_bytes(key)
    (tmp_path / "ca.crt").unlink()
    assert "ca.crt" in one_line_error(runner.invoke(app, create))
    assert (tmp_path / "ca.key").read_bytes() == key


def test_an_encrypted_ca_key_is_a_one_line_error(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    create = ["certs", "create", str(tmp_path), "--client", "cam1"]
    assert runner.invoke(app, create).exit_code == 0
    key = serialization.load_pem_private_key((tmp_path / "ca.key").read_bytes(), None)
    (tmp_path / "ca.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    assert "encrypted" in one_line_error(runner.invoke(app, create))
    (tmp_path / "ca.key").write_text("not a key")
    assert "ca.key" in one_line_error(runner.invoke(app, create))


def test_an_unwritable_folder_is_a_one_line_error(tmp_path: Path) -> None:
    import os

    create = ["certs", "create", str(tmp_path), "--client", "cam1"]
    assert runner.invoke(app, create).exit_code == 0
    (tmp_path / "cam2.crt").mkdir()  # a certificate path that cannot be written
    out = one_line_error(runner.invoke(app, [*create[:3], "--client", "cam2"]))
    assert "cam2.crt" in out and os.path.isdir(tmp_path / "cam2.crt")
