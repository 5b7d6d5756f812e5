"""Token verification edge cases: every way a token can be wrong is refused."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from dockyard.auth.jwt import InvalidToken, TokenVerifier
from dockyard.auth.keys import ALGORITHMS, TrustedKeys, jwk_thumbprint

from .issuer import ISSUER, SERVICE, Issuer, SigningKey, certificate, new_key, x5c

PULL = ("repository", "team/app", ["pull"])


@pytest.fixture(scope="module")
def signer() -> SigningKey:
    return SigningKey.create("ec")


@pytest.fixture
def issuer(signer: SigningKey) -> Issuer:
    return Issuer(signer)


def verifier_for(
    *signers: SigningKey,
    algorithms: frozenset[str] = frozenset(ALGORITHMS),
    clock: Callable[[], float] = time.time,
    extra: TrustedKeys | None = None,
) -> TokenVerifier:
    keys = extra or TrustedKeys()
    for s in signers:
        keys.add_root(s.cert)
    return TokenVerifier(
        issuer=ISSUER, service=SERVICE, keys=keys, algorithms=algorithms, clock=clock
    )


@pytest.fixture
def verifier(signer: SigningKey) -> TokenVerifier:
    return verifier_for(signer)


def refused(verifier: TokenVerifier, token: str, reason: str) -> None:
    with pytest.raises(InvalidToken, match=reason):
        verifier.verify(token)


def test_valid_token_by_x5c(issuer: Issuer, verifier: TokenVerifier) -> None:
    token = verifier.verify(issuer.mint([PULL], subject="alice"))
    assert token.subject == "alice"
    assert token.access == {("repository", "team/app"): frozenset({"pull"})}


def test_valid_token_by_kid_libtrust_or_thumbprint(
    issuer: Issuer, signer: SigningKey, verifier: TokenVerifier
) -> None:
    thumbprint = jwk_thumbprint(signer.key.public_key())
    for kid in (signer.kid, thumbprint):
        token = issuer.mint([PULL], headers={"kid": kid})
        assert verifier.verify(token).access


def test_embedded_jwk_must_be_a_trusted_key(
    issuer: Issuer, signer: SigningKey, verifier: TokenVerifier
) -> None:
    assert verifier.verify(issuer.mint([PULL], headers={"jwk": signer.jwk()})).access
    stranger = SigningKey.create()
    refused(
        verifier,
        issuer.mint([PULL], key=stranger.key, headers={"jwk": stranger.jwk()}),
        "no trusted key",
    )


def test_rs256_token(tmp_path: object) -> None:
    rsa_signer = SigningKey.create("rsa")
    issuer = Issuer(rsa_signer)
    verifier = verifier_for(rsa_signer)
    assert verifier.verify(issuer.mint([PULL], headers={"kid": rsa_signer.kid})).access
    assert verifier.verify(issuer.mint([PULL])).access


def test_audience_may_be_a_list(issuer: Issuer, verifier: TokenVerifier) -> None:
    token = issuer.mint([PULL], claims={"aud": ["other", SERVICE]})
    assert verifier.verify(token).access


def test_anonymous_token_has_no_subject(issuer: Issuer, verifier: TokenVerifier) -> None:
    assert verifier.verify(issuer.mint([PULL], subject="")).subject is None


def test_wrong_issuer(issuer: Issuer, verifier: TokenVerifier) -> None:
    refused(verifier, issuer.mint([PULL], claims={"iss": "someone-else"}), "issuer")


def test_missing_issuer(issuer: Issuer, verifier: TokenVerifier) -> None:
    refused(verifier, issuer.mint([PULL], claims={"iss": None}), "iss")


def test_wrong_audience(issuer: Issuer, verifier: TokenVerifier) -> None:
    refused(verifier, issuer.mint([PULL], claims={"aud": "another-registry"}), "(?i)audience")
    refused(verifier, issuer.mint([PULL], claims={"aud": None}), "aud")


def test_expired(issuer: Issuer, verifier: TokenVerifier) -> None:
    refused(verifier, issuer.mint([PULL], lifetime=-120), "expired")


def test_expired_within_the_leeway_is_accepted(issuer: Issuer, verifier: TokenVerifier) -> None:
    assert verifier.verify(issuer.mint([PULL], lifetime=-30)).access


def test_missing_exp(issuer: Issuer, verifier: TokenVerifier) -> None:
    refused(verifier, issuer.mint([PULL], claims={"exp": None}), "no exp")


def test_non_numeric_times(issuer: Issuer, verifier: TokenVerifier) -> None:
    refused(verifier, issuer.mint([PULL], claims={"exp": "tomorrow"}), "exp claim")
    refused(verifier, issuer.mint([PULL], claims={"nbf": True}), "nbf claim")


def test_not_yet_valid(issuer: Issuer, verifier: TokenVerifier) -> None:
    now = int(time.time())
    refused(verifier, issuer.mint([PULL], claims={"nbf": now + 600}), "not valid yet")
    # Within the leeway, a server a little ahead of us is fine.
    assert verifier.verify(issuer.mint([PULL], claims={"nbf": now + 30})).access


def test_tampered_payload_fails_the_signature(issuer: Issuer, verifier: TokenVerifier) -> None:
    header, payload, signature = issuer.mint([PULL]).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["access"][0]["actions"] = ["pull", "push"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    refused(verifier, f"{header}.{forged}.{signature}", "signature")


def test_signed_by_another_key_under_a_trusted_name(
    issuer: Issuer, signer: SigningKey, verifier: TokenVerifier
) -> None:
    impostor = new_key()
    # The trusted key's ID and certificate, another key's signature.
    refused(verifier, issuer.mint([PULL], key=impostor), "signature")
    refused(verifier, issuer.mint([PULL], key=impostor, headers={"kid": signer.kid}), "signature")


def test_untrusted_kid(issuer: Issuer, verifier: TokenVerifier) -> None:
    refused(verifier, issuer.mint([PULL], headers={"kid": "AAAA:BBBB"}), "no trusted key")
    refused(verifier, issuer.mint([PULL], headers={}), "names no key")


def test_certificate_chain_not_in_the_bundle(issuer: Issuer, verifier: TokenVerifier) -> None:
    stranger = SigningKey.create("ec", name="token-signer")
    token = Issuer(stranger).mint([PULL])
    refused(verifier, token, "does not lead")


def test_chain_through_an_intermediate(signer: SigningKey) -> None:
    root_key = new_key()
    root = certificate(root_key, name="root")
    leaf_key = new_key()
    leaf = certificate(leaf_key, name="leaf", issuer=(root, root_key), ca=False)
    keys = TrustedKeys()
    keys.add_root(root)
    verifier = verifier_for(extra=keys)
    token = Issuer(SigningKey(leaf_key, leaf, "ES256")).mint([PULL], headers={"x5c": x5c(leaf)})
    assert verifier.verify(token).access


def test_alg_none_is_refused(issuer: Issuer, signer: SigningKey, verifier: TokenVerifier) -> None:
    header = {"alg": "none", "typ": "JWT", "kid": signer.kid}
    signed = issuer.mint([PULL]).split(".")[1]
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    refused(verifier, f"{encoded}.{signed}.", "'none' not allowed")
    unsigned = jwt.encode({"iss": ISSUER}, "", algorithm="none")
    refused(verifier, unsigned, "not allowed")


def test_hmac_signed_with_the_public_key_is_refused(
    signer: SigningKey, verifier: TokenVerifier
) -> None:
    # The classic confusion: a verifier that feeds the public key to HMAC would accept this.
    public_pem = signer.cert.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": SERVICE, "exp": now + 300, "access": []}
    header = f'{{"alg":"HS256","typ":"JWT","kid":"{signer.kid}"}}'.encode()
    signing_input = (
        base64.urlsafe_b64encode(header).rstrip(b"=")
        + b"."
        + base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    )
    import hashlib
    import hmac

    mac = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    token = signing_input.decode() + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    refused(verifier, token, "no trusted key for HS256")


def test_hmac_with_a_jwks_secret_is_accepted_only_when_allowed() -> None:
    secret = b"0123456789abcdef0123456789abcdef"
    keys = TrustedKeys()
    keys.add("shared", secret)
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": SERVICE, "exp": now + 300, "access": []}
    token = jwt.encode(claims, secret, algorithm="HS256", headers={"kid": "shared"})
    assert verifier_for(extra=keys).verify(token).access == {}
    strict = TokenVerifier(
        issuer=ISSUER, service=SERVICE, keys=keys, algorithms=frozenset({"ES256", "RS256"})
    )
    refused(strict, token, "not allowed")


def test_algorithm_must_suit_the_curve(issuer: Issuer, signer: SigningKey) -> None:
    verifier = verifier_for(signer)
    _, payload, signature = issuer.mint([PULL]).split(".")
    header = {"alg": "ES384", "typ": "JWT", "kid": signer.kid}
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    refused(verifier, f"{encoded}.{payload}.{signature}", "no trusted key for ES384")


def test_restricted_signing_algorithms(issuer: Issuer, signer: SigningKey) -> None:
    verifier = verifier_for(signer, algorithms=frozenset({"RS256"}))
    refused(verifier, issuer.mint([PULL]), "'ES256' not allowed")


@pytest.mark.parametrize(
    "token", ["", "abc", "a.b", "a.b.c", "a.b.c.d", "e30.e30.", "!!!.???.***", "x" * 70_000]
)
def test_malformed_tokens(token: str, verifier: TokenVerifier) -> None:
    with pytest.raises(InvalidToken):
        verifier.verify(token)


def test_malformed_header_fields(issuer: Issuer, verifier: TokenVerifier) -> None:
    refused(verifier, issuer.mint([PULL], headers={"x5c": "not-a-list"}), "x5c")
    refused(verifier, issuer.mint([PULL], headers={"x5c": ["!!!"]}), "certificate")
    refused(verifier, issuer.mint([PULL], headers={"jwk": "nope"}), "jwk")


def test_critical_header_extensions_are_refused(issuer: Issuer, signer: SigningKey) -> None:
    verifier = verifier_for(signer)
    token = issuer.mint([PULL], headers={"kid": signer.kid, "crit": ["exp"], "exp": 1})
    refused(verifier, token, "critical")


def test_malformed_access_claim(issuer: Issuer, verifier: TokenVerifier) -> None:
    refused(verifier, issuer.mint(claims={"access": {"type": "repository"}}), "access")
    refused(verifier, issuer.mint(claims={"access": [{"name": "x"}]}), "access")


def test_remembered_token_still_expires(issuer: Issuer, signer: SigningKey) -> None:
    now = [time.time()]
    verifier = verifier_for(signer, clock=lambda: now[0])
    token = issuer.mint([PULL], lifetime=120)
    assert verifier.verify(token).access
    now[0] += 150  # past exp, within the leeway
    assert verifier.verify(token).access
    now[0] += 60  # past exp + leeway
    refused(verifier, token, "expired")


def test_remembered_token_stops_with_its_certificate(issuer: Issuer) -> None:
    from datetime import UTC, datetime, timedelta

    key = new_key()
    soon = datetime.now(UTC) + timedelta(seconds=100)
    cert = certificate(key, name="short-lived", not_after=soon)
    short = SigningKey(key, cert, "ES256")
    now = [time.time()]
    verifier = verifier_for(short, clock=lambda: now[0])
    token = Issuer(short).mint([PULL], lifetime=3600)
    assert verifier.verify(token).access
    now[0] += 200
    refused(verifier, token, "expired")
