"""The agreed signing API: canonical message, key ids, sign/verify, rotation, refusals."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import pytest

from whichbin.errors import ConfigError, WhichbinError
from whichbin.security.signing import (
    DOMAIN,
    SignatureError,
    Signer,
    TrustedKeys,
    canonical_message,
    key_id,
    new_private_pem,
    verify_deployment,
)

SHA = "ab" * 32
ARGS = ("trash-classifier", "trash-classifier/7", SHA, 1234)


def test_canonical_message_is_tagged_sorted_compact_json() -> None:
    msg = canonical_message(*ARGS)
    assert msg.startswith(DOMAIN)
    body = msg[len(DOMAIN) :].decode()
    assert json.loads(body) == {
        "name": "trash-classifier",
        "version": "trash-classifier/7",
        "sha256": SHA,
        "size": 1234,
    }
    assert body == json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))


@pytest.mark.parametrize("size", [-1, True, 1.5, "12"])
def test_canonical_message_refuses_a_size_that_is_not_a_byte_count(size: object) -> None:
    with pytest.raises(SignatureError):
        canonical_message("n", "n/1", SHA, size)  # type: ignore[arg-type]


def test_key_id_is_16_hex_of_the_raw_public_key() -> None:
    signer = Signer.from_pem(new_private_pem())
    assert len(signer.key_id) == 16
    assert int(signer.key_id, 16) >= 0
    assert signer.key_id == key_id(signer.public_key)


def test_sign_then_verify_and_every_tampered_field_fails() -> None:
    signer = Signer.from_pem(new_private_pem())
    trusted = TrustedKeys.from_pems([signer.public_pem()])
    sig = signer.sign(*ARGS)
    assert sig.key_id == signer.key_id
    assert len(base64.b64decode(sig.signature)) == 64
    trusted.verify(*ARGS, sig.key_id, sig.signature)
    for i, bad in enumerate(("other", "trash-classifier/8", "cd" * 32, 1235)):
        args = list(ARGS)
        args[i] = bad
        with pytest.raises(SignatureError, match="^bad signature$"):
            trusted.verify(*args, sig.key_id, sig.signature)  # type: ignore[arg-type]


def test_refusal_reasons_are_one_line() -> None:
    signer = Signer.from_pem(new_private_pem())
    other = Signer.from_pem(new_private_pem())
    sig = signer.sign(*ARGS)
    with pytest.raises(SignatureError, match="^no trusted key$") as nothing_to_check:
        TrustedKeys().verify(*ARGS, sig.key_id, sig.signature)
    trusted = TrustedKeys([other.public_key])
    with pytest.raises(SignatureError, match="^unsigned deployment$") as unsigned:
        trusted.verify(*ARGS, "", "")
    with pytest.raises(SignatureError, match=f"^unknown key {sig.key_id}$") as unknown:
        trusted.verify(*ARGS, sig.key_id, sig.signature)
    # Only "nothing could be checked" is ``missing`` (what insecure mode may accept).
    assert nothing_to_check.value.missing and unsigned.value.missing
    assert not unknown.value.missing
    # right key id, signature by someone else
    forged = other.sign(*ARGS)
    with pytest.raises(SignatureError, match="^bad signature$"):
        TrustedKeys([signer.public_key]).verify(*ARGS, signer.key_id, forged.signature)
    with pytest.raises(SignatureError, match="^bad signature$"):
        TrustedKeys([signer.public_key]).verify(*ARGS, signer.key_id, "not base64!")
    assert isinstance(SignatureError("x"), WhichbinError)


def test_rotation_two_trusted_keys_accept_both() -> None:
    old, new = Signer.from_pem(new_private_pem()), Signer.from_pem(new_private_pem())
    trusted = TrustedKeys.from_pems([old.public_pem(), new.public_pem()])
    assert set(trusted) == {old.key_id, new.key_id}
    for s in (old, new):
        sig = s.sign(*ARGS)
        trusted.verify(*ARGS, sig.key_id, sig.signature)
    # after rotation the old key is dropped: its deployments are refused
    with pytest.raises(SignatureError, match="unknown key"):
        sig = old.sign(*ARGS)
        TrustedKeys.from_pems([new.public_pem()]).verify(*ARGS, sig.key_id, sig.signature)


def test_verify_deployment_reads_the_payload_fields() -> None:
    signer = Signer.from_pem(new_private_pem())
    trusted = TrustedKeys([signer.public_key])
    sig = signer.sign(*ARGS)
    dep = SimpleNamespace(
        version="trash-classifier/7",
        sha256=SHA,
        size=1234,
        key_id=sig.key_id,
        signature=sig.signature,
    )
    verify_deployment(dep, trusted)
    with pytest.raises(SignatureError, match="^unsigned deployment$"):
        verify_deployment(SimpleNamespace(version="trash-classifier/7", sha256=SHA), trusted)
    with pytest.raises(SignatureError, match="^no trusted key$"):
        verify_deployment(dep, TrustedKeys())
    dep.sha256 = "cd" * 32
    with pytest.raises(SignatureError, match="^bad signature$"):
        verify_deployment(dep, trusted)


def test_key_files_load_and_bad_files_are_config_errors(tmp_path) -> None:  # noqa: ANN001
    priv = tmp_path / "signing.pem"
    priv.write_bytes(new_private_pem())
    signer = Signer.from_file(priv)
    pub = tmp_path / "pub.pem"
    pub.write_bytes(signer.public_pem())
    assert list(TrustedKeys.from_files([pub])) == [signer.key_id]
    with pytest.raises(ConfigError, match="missing.pem"):
        Signer.from_file(tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match="pub.pem"):
        Signer.from_file(pub)  # a public key is not a signing key
    with pytest.raises(ConfigError, match="signing.pem"):
        TrustedKeys.from_files([priv])  # a private key is not a trusted public key
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ecpem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ConfigError, match="Ed25519"):
        Signer.from_pem(ecpem)
