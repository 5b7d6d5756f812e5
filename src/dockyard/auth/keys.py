"""The keys a token may be signed with: certificates of ``rootcertbundle``, keys of ``jwks``,
their key IDs, the algorithms each key may verify, and certificate chains (``x5c``) that must
lead to a bundled certificate.

A token names its key in one of three ways, tried in this order as Distribution does:

- ``x5c``: a certificate chain whose first certificate holds the key; the chain must be valid
  now and end at (or be issued by) a certificate of the bundle;
- ``jwk``: an embedded key, used only if it is one of the trusted keys;
- ``kid``: the ID of a trusted key. A bundled certificate's key answers to its libtrust key ID
  (Distribution 2), its RFC 7638 thumbprint (Distribution 3), and the variant of the
  thumbprint Distribution 3 computes for EC and Ed25519 keys; a JWKS key answers to its
  ``kid`` (or its thumbprint when it has none).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

__all__ = [
    "ALGORITHMS",
    "PublicKey",
    "TrustedKeys",
    "UntrustedKey",
    "VerificationKey",
    "jwk_thumbprint",
    "key_ids",
    "libtrust_key_id",
    "load_certificates",
    "load_jwks",
    "suits",
    "verify_chain",
]

PublicKey = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)
# bytes: an HMAC secret (a JWKS ``oct`` key).
VerificationKey = PublicKey | bytes

# Distribution's list (``auth.token.signingalgorithms``), which is also its default.
ALGORITHMS = (
    "EdDSA",
    "HS256",
    "HS384",
    "HS512",
    "RS256",
    "RS384",
    "RS512",
    "ES256",
    "ES384",
    "ES512",
    "PS256",
    "PS384",
    "PS512",
)
_CURVES = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}
_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


class UntrustedKey(ValueError):
    """A key, certificate or chain that cannot be trusted or read."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(value: int, size: int | None = None) -> bytes:
    length = size if size is not None else max(1, (value.bit_length() + 7) // 8)
    return value.to_bytes(length, "big")


def _thumbprint(members: Mapping[str, str]) -> str:
    canonical = json.dumps(dict(sorted(members.items())), separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def _ec_members(key: ec.EllipticCurvePublicKey) -> tuple[str, int] | None:
    crv = _CURVE_NAMES.get(key.curve.name)
    if crv is None:
        return None
    return crv, (key.curve.key_size + 7) // 8


def jwk_thumbprint(key: PublicKey) -> str | None:
    """The RFC 7638 SHA-256 thumbprint, base64url; ``None`` for a key type JWK cannot name."""
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return _thumbprint(
            {"e": _b64url(_uint(numbers.e)), "kty": "RSA", "n": _b64url(_uint(numbers.n))}
        )
    if isinstance(key, ec.EllipticCurvePublicKey):
        members = _ec_members(key)
        if members is None:
            return None
        crv, size = members
        point = key.public_numbers()
        return _thumbprint(
            {
                "crv": crv,
                "kty": "EC",
                "x": _b64url(_uint(point.x, size)),
                "y": _b64url(_uint(point.y, size)),
            }
        )
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    crv = "Ed25519" if isinstance(key, ed25519.Ed25519PublicKey) else "Ed448"
    return _thumbprint({"crv": crv, "kty": "OKP", "x": _b64url(raw)})


def _distribution_thumbprint(key: PublicKey) -> str | None:
    """The ID Distribution 3 gives EC and Ed25519 keys (see the module docstring)."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        members = _ec_members(key)
        if members is None:
            return None
        # Distribution reads the curve's generator point, not the key's: the point of the
        # private value 1.
        generator = ec.derive_private_key(1, key.curve).public_key().public_numbers()
        gx, gy = generator.x, generator.y
        payload = {"crv": members[0], "kty": "EC", "x": _b64url(_uint(gx)), "y": _b64url(_uint(gy))}
        return _thumbprint(payload)
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return _thumbprint({"crv": "Ed25519", "kty": "OTP", "x": _b64url(raw)})
    return None


def libtrust_key_id(key: PublicKey) -> str:
    """libtrust's key ID: the first 240 bits of the SHA-256 of the DER public key, base32,
    in twelve groups of four separated by colons."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode("ascii").rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


def key_ids(key: PublicKey) -> set[str]:
    """Every ID under which a bundled certificate's key is found."""
    ids = {libtrust_key_id(key)}
    for extra in (jwk_thumbprint(key), _distribution_thumbprint(key)):
        if extra:
            ids.add(extra)
    return ids


def suits(algorithm: str, key: VerificationKey) -> bool:
    """Whether ``key`` may verify a signature made with ``algorithm``: HMAC only with a secret,
    never with a public key (the classic confusion), and each curve with its own algorithm."""
    if algorithm.startswith("HS"):
        return isinstance(key, bytes)
    if algorithm.startswith(("RS", "PS")):
        return isinstance(key, rsa.RSAPublicKey)
    if algorithm in _CURVES:
        return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(
            key.curve, _CURVES[algorithm]
        )
    if algorithm == "EdDSA":
        return isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)
    return False


def _public(key: Any) -> PublicKey:
    private = (
        rsa.RSAPrivateKey
        | ec.EllipticCurvePrivateKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PrivateKey
    )
    if isinstance(key, private):
        key = key.public_key()
    if not isinstance(
        key,
        rsa.RSAPublicKey
        | ec.EllipticCurvePublicKey
        | ed25519.Ed25519PublicKey
        | ed448.Ed448PublicKey,
    ):
        raise UntrustedKey(f"unsupported key type {type(key).__name__}")
    return key


def load_certificates(path: Path) -> list[x509.Certificate]:
    """The certificates of a PEM bundle (other PEM blocks are skipped)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UntrustedKey(f"cannot read {path}: {exc.strerror}") from None
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise UntrustedKey(f"{path}: no PEM certificate found")
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise UntrustedKey(f"{path}: cannot parse the certificates: {exc}") from None
    for certificate in certificates:
        try:
            _public(certificate.public_key())
        except (UntrustedKey, ValueError) as exc:
            raise UntrustedKey(f"{path}: {certificate.subject.rfc4514_string()}: {exc}") from None
    return certificates


def load_jwks(path: Path) -> list[tuple[str, VerificationKey]]:
    """``(kid, key)`` for each usable key of a JWKS file (public keys and ``oct`` secrets)."""
    try:
        document = json.loads(path.read_bytes())
    except OSError as exc:
        raise UntrustedKey(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UntrustedKey(f"{path}: not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise UntrustedKey(f'{path}: not a JWK set (no "keys" list)')
    out: list[tuple[str, VerificationKey]] = []
    for number, entry in enumerate(document["keys"]):
        if not isinstance(entry, dict):
            raise UntrustedKey(f"{path}: key {number} is not an object")
        try:
            jwk = jwt.PyJWK.from_dict(entry)
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise UntrustedKey(f"{path}: key {number}: {exc}") from None
        key: VerificationKey = jwk.key if isinstance(jwk.key, bytes) else _public(jwk.key)
        kid = jwk.key_id or (jwk_thumbprint(key) if not isinstance(key, bytes) else None)
        if not kid:
            raise UntrustedKey(f"{path}: key {number}: a secret key needs a kid")
        out.append((kid, key))
    return out


@dataclass
class TrustedKeys:
    """Root certificates (for ``x5c``) and keys by ID (for ``kid`` and ``jwk``)."""

    roots: list[x509.Certificate] = field(default_factory=list)
    by_id: dict[str, list[VerificationKey]] = field(default_factory=dict)

    def add(self, kid: str, key: VerificationKey) -> None:
        self.by_id.setdefault(kid, []).append(key)

    def add_root(self, certificate: x509.Certificate) -> None:
        self.roots.append(certificate)
        key = _public(certificate.public_key())
        for kid in key_ids(key):
            self.add(kid, key)

    def __bool__(self) -> bool:
        return bool(self.roots or self.by_id)

    def for_jwk(self, jwk: Mapping[str, Any]) -> list[VerificationKey]:
        """The embedded key if it is one of the trusted keys, else nothing."""
        try:
            embedded = jwt.PyJWK.from_dict(dict(jwk))
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise UntrustedKey(f"unreadable jwk header: {exc}") from None
        if isinstance(embedded.key, bytes):
            raise UntrustedKey("a secret key cannot be embedded in a token")
        key = _public(embedded.key)
        ids = (jwk_thumbprint(key) or "", libtrust_key_id(key))
        return [key] if any(_same(k, key) for i in ids for k in self.by_id.get(i, [])) else []


def _same(a: VerificationKey, b: PublicKey) -> bool:
    if isinstance(a, bytes):
        return False

    def der(key: PublicKey) -> bytes:
        return key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    return der(a) == der(b)


# A chain longer than this is refused unread.
MAX_CHAIN = 8


def _decode_chain(x5c: Sequence[Any]) -> list[x509.Certificate]:
    if not x5c or len(x5c) > MAX_CHAIN:
        raise UntrustedKey("x5c must hold 1 to 8 certificates")
    chain = []
    for entry in x5c:
        if not isinstance(entry, str):
            raise UntrustedKey("x5c entries must be strings")
        try:
            chain.append(x509.load_der_x509_certificate(base64.b64decode(entry, validate=True)))
        except (binascii.Error, ValueError) as exc:
            raise UntrustedKey(f"unreadable certificate in x5c: {exc}") from None
    return chain


def _check_time(certificate: x509.Certificate, now: datetime) -> None:
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise UntrustedKey(f"certificate {certificate.subject.rfc4514_string()} is not valid now")


def _check_critical(certificate: x509.Certificate) -> None:
    for extension in certificate.extensions:
        if extension.critical and isinstance(extension.value, x509.UnrecognizedExtension):
            raise UntrustedKey(f"certificate has an unknown critical extension {extension.oid}")


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _may_sign(issuer: x509.Certificate, below: int, *, root: bool) -> bool:
    """Whether ``issuer`` may issue a chain with ``below`` intermediates under it. A bundled
    root is trusted as it is; an intermediate must say it is a CA."""
    try:
        constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return root
    if not constraints.ca:
        return root
    return constraints.path_length is None or below <= constraints.path_length


def verify_chain(
    x5c: Sequence[Any], roots: Sequence[x509.Certificate], now: datetime
) -> tuple[PublicKey, datetime]:
    """The leaf's key of a valid chain leading to one of ``roots``, and the time the chain
    stops being valid; :class:`UntrustedKey` otherwise."""
    chain = _decode_chain(x5c)
    for certificate in chain:
        _check_time(certificate, now)
        _check_critical(certificate)
    leaf = chain[0]
    valid_until = min(c.not_valid_after_utc for c in chain)
    root_ders = {root.public_bytes(serialization.Encoding.DER) for root in roots}
    if leaf.public_bytes(serialization.Encoding.DER) in root_ders:
        return _public(leaf.public_key()), valid_until
    current, intermediates, used = leaf, chain[1:], 0
    for _ in range(MAX_CHAIN):
        for root in roots:
            if _issued_by(current, root) and _may_sign(root, used, root=True):
                _check_time(root, now)
                return _public(leaf.public_key()), min(valid_until, root.not_valid_after_utc)
        for candidate in intermediates:
            if _issued_by(current, candidate) and _may_sign(candidate, used, root=False):
                current, used = candidate, used + 1
                intermediates = [c for c in intermediates if c is not candidate]
                break
        else:
            break
    raise UntrustedKey("the certificate chain does not lead to a trusted certificate")
