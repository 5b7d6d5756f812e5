"""Trusted keys: key IDs against published values, which algorithm suits which key, bundles,
JWK sets, and certificate chains that must lead to the bundle."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from dockyard.auth.keys import (
    TrustedKeys,
    UntrustedKey,
    jwk_thumbprint,
    key_ids,
    libtrust_key_id,
    load_certificates,
    load_jwks,
    suits,
    verify_chain,
)

from .issuer import certificate, new_key, pem, x5c

NOW = datetime.now(UTC)


def b64int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def test_libtrust_key_id_of_the_specification_example() -> None:
    # The ECDSA key and its ID in Distribution's docs/spec/auth/jwt.md.
    key = ec.EllipticCurvePublicNumbers(
        b64int("m7zUpx3b-zmVE5cymSs64POG9QcyEpJaYCD82-549_Q"),
        b64int("dU3biz8sZ_8GPB-odm8Wxz3lNDr1xcAQQPQaOcr1fmc"),
        ec.SECP256R1(),
    ).public_key()
    assert libtrust_key_id(key) == "PYYO:TEWU:V7JH:26JV:AQTZ:LJC3:SXVJ:XGHA:34F2:2LAQ:ZRMK:Z7Q6"


def test_jwk_thumbprint_of_the_rfc_7638_example() -> None:
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
        "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F"
        "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
        "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    key = rsa.RSAPublicNumbers(b64int("AQAB"), b64int(n)).public_key()
    assert jwk_thumbprint(key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_ec_thumbprint_pads_coordinates_and_differs_per_key() -> None:
    keys = [ec.generate_private_key(ec.SECP256R1()).public_key() for _ in range(2)]
    assert jwk_thumbprint(keys[0]) != jwk_thumbprint(keys[1])
    # Both keys also answer to the one ID Distribution 3 computes for every P-256 key.
    shared = key_ids(keys[0]) & key_ids(keys[1])
    assert len(shared) == 1


def test_suits_matches_algorithm_and_key_type() -> None:
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key()
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    rsa_key = new_key("rsa").public_key()
    ed = ed25519.Ed25519PrivateKey.generate().public_key()
    secret = b"s" * 32
    assert suits("ES256", p256)
    assert not suits("ES256", p384)
    assert suits("ES384", p384)
    assert not suits("ES256", rsa_key)
    assert suits("RS256", rsa_key)
    assert suits("PS512", rsa_key)
    assert not suits("RS256", p256)
    assert suits("EdDSA", ed)
    assert suits("HS256", secret)
    # HMAC never with a public key, whatever the token says.
    for public in (p256, rsa_key, ed):
        assert not suits("HS256", public)
    assert not suits("none", p256)
    assert not suits("ES256", secret)


def test_load_certificates(tmp_path: Path) -> None:
    one, two = (certificate(new_key(), name=n) for n in ("one", "two"))
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(b"junk before\n" + pem(one, two))
    assert load_certificates(bundle) == [one, two]
    empty = tmp_path / "empty.pem"
    empty.write_text("nothing\n")
    with pytest.raises(UntrustedKey, match="no PEM certificate"):
        load_certificates(empty)
    with pytest.raises(UntrustedKey, match="cannot read"):
        load_certificates(tmp_path / "missing.pem")
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(UntrustedKey, match="cannot parse"):
        load_certificates(broken)


def test_trusted_keys_index_a_certificate_under_every_id() -> None:
    key = new_key()
    cert = certificate(key, name="signer")
    trusted = TrustedKeys()
    trusted.add_root(cert)
    public = key.public_key()
    assert trusted.roots == [cert]
    for kid in (libtrust_key_id(public), jwk_thumbprint(public)):
        assert kid is not None
        assert trusted.by_id[kid] == [cert.public_key()]


def test_load_jwks(tmp_path: Path) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    numbers = ec_key.public_key().public_numbers()
    secret = b"0123456789abcdef0123456789abcdef"

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    jwks = {
        "keys": [
            {
                "kty": "EC",
                "crv": "P-256",
                "kid": "ec-1",
                "x": b64(numbers.x.to_bytes(32, "big")),
                "y": b64(numbers.y.to_bytes(32, "big")),
            },
            {"kty": "oct", "kid": "hmac-1", "k": b64(secret)},
            {
                "kty": "EC",
                "crv": "P-256",
                "x": b64(numbers.x.to_bytes(32, "big")),
                "y": b64(numbers.y.to_bytes(32, "big")),
            },
        ]
    }
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))
    loaded = load_jwks(path)
    assert [kid for kid, _ in loaded] == ["ec-1", "hmac-1", jwk_thumbprint(ec_key.public_key())]
    assert loaded[1][1] == secret
    assert isinstance(loaded[0][1], ec.EllipticCurvePublicKey)

    path.write_text('{"keys": [{"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0"}]}')
    with pytest.raises(UntrustedKey, match="needs a kid"):
        load_jwks(path)
    path.write_text('{"nokeys": []}')
    with pytest.raises(UntrustedKey, match="not a JWK set"):
        load_jwks(path)
    path.write_text("{")
    with pytest.raises(UntrustedKey, match="not JSON"):
        load_jwks(path)
    path.write_text('{"keys": [{"kty": "XX"}]}')
    with pytest.raises(UntrustedKey, match="key 0"):
        load_jwks(path)


def test_embedded_jwk_counts_only_when_trusted() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    trusted = TrustedKeys()
    trusted.add_root(certificate(key, name="signer"))
    numbers = key.public_key().public_numbers()

    def jwk(x: int, y: int) -> dict[str, str]:
        def b64(v: int) -> str:
            return base64.urlsafe_b64encode(v.to_bytes(32, "big")).rstrip(b"=").decode()

        return {"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)}

    assert trusted.for_jwk(jwk(numbers.x, numbers.y)) == [key.public_key()]
    other = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    assert trusted.for_jwk(jwk(other.x, other.y)) == []
    with pytest.raises(UntrustedKey):
        trusted.for_jwk({"kty": "oct", "k": "c2VjcmV0"})


# Certificate chains -------------------------------------------------------------------------------


def der(public: object) -> bytes:
    assert isinstance(public, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_self_signed_certificate_in_the_bundle() -> None:
    key = new_key()
    cert = certificate(key, name="signer", ca=None)
    found, until = verify_chain(x5c(cert), [cert], NOW)
    assert der(found) == der(key.public_key())
    assert until == cert.not_valid_after_utc


def test_leaf_issued_by_a_bundled_root_through_an_intermediate() -> None:
    root_key, mid_key, leaf_key = new_key(), new_key("rsa"), new_key()
    root = certificate(root_key, name="root", path_length=1)
    mid = certificate(mid_key, name="mid", issuer=(root, root_key), path_length=0)
    leaf = certificate(leaf_key, name="leaf", issuer=(mid, mid_key), ca=False)
    found, _ = verify_chain(x5c(leaf, mid), [root], NOW)
    assert der(found) == der(leaf_key.public_key())
    # The root may be sent along too.
    found, _ = verify_chain(x5c(leaf, mid, root), [root], NOW)
    assert der(found) == der(leaf_key.public_key())
    # A leaf issued directly by the root.
    direct = certificate(leaf_key, name="leaf", issuer=(root, root_key), ca=False)
    assert der(verify_chain(x5c(direct), [root], NOW)[0]) == der(leaf_key.public_key())


def test_chain_not_leading_to_the_bundle_is_refused() -> None:
    root_key, other_key, leaf_key = new_key(), new_key(), new_key()
    root = certificate(root_key, name="root")
    other = certificate(other_key, name="root")  # same name, different key
    leaf = certificate(leaf_key, name="leaf", issuer=(other, other_key), ca=False)
    with pytest.raises(UntrustedKey, match="does not lead"):
        verify_chain(x5c(leaf, other), [root], NOW)
    with pytest.raises(UntrustedKey, match="does not lead"):
        verify_chain(x5c(leaf), [], NOW)


def test_intermediate_that_is_not_a_ca_cannot_issue() -> None:
    root_key, mid_key, leaf_key = new_key(), new_key(), new_key()
    root = certificate(root_key, name="root")
    mid = certificate(mid_key, name="mid", issuer=(root, root_key), ca=False)
    leaf = certificate(leaf_key, name="leaf", issuer=(mid, mid_key), ca=False)
    with pytest.raises(UntrustedKey, match="does not lead"):
        verify_chain(x5c(leaf, mid), [root], NOW)


def test_path_length_is_enforced() -> None:
    root_key, mid_key, leaf_key = new_key(), new_key(), new_key()
    root = certificate(root_key, name="root", path_length=0)
    mid = certificate(mid_key, name="mid", issuer=(root, root_key))
    leaf = certificate(leaf_key, name="leaf", issuer=(mid, mid_key), ca=False)
    with pytest.raises(UntrustedKey, match="does not lead"):
        verify_chain(x5c(leaf, mid), [root], NOW)


def test_expired_or_future_certificates_are_refused() -> None:
    key = new_key()
    expired = certificate(
        key, name="old", not_before=NOW - timedelta(days=2), not_after=NOW - timedelta(days=1)
    )
    with pytest.raises(UntrustedKey, match="not valid now"):
        verify_chain(x5c(expired), [expired], NOW)
    future = certificate(key, name="new", not_before=NOW + timedelta(days=1))
    with pytest.raises(UntrustedKey, match="not valid now"):
        verify_chain(x5c(future), [future], NOW)


@pytest.mark.parametrize("chain", [[], ["!!!"], [base64.b64encode(b"not der").decode()], [1]])
def test_unreadable_chains_are_refused(chain: list[object]) -> None:
    cert = certificate(new_key(), name="root")
    with pytest.raises(UntrustedKey):
        verify_chain(chain, [cert], NOW)
