"""A token issuer for tests: keys, self-signed and issued certificates, and tokens minted with
PyJWT the way a Docker token server mints them."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from dockyard.auth.keys import libtrust_key_id

__all__ = ["Issuer", "SigningKey", "certificate", "new_key", "x5c"]

ISSUER = "test-issuer"
SERVICE = "test-registry"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def new_key(kind: str = "ec") -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def certificate(
    key: PrivateKey,
    *,
    name: str,
    issuer: tuple[x509.Certificate, PrivateKey] | None = None,
    ca: bool | None = True,
    path_length: int | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> x509.Certificate:
    """A certificate for ``key``: self-signed, or issued by ``issuer`` (certificate, key).
    ``ca=None`` leaves out the basic constraints extension."""
    now = datetime.now(UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signer_name, signer_key = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(hours=1))
        .not_valid_after(not_after or now + timedelta(days=1))
    )
    if ca is not None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
        )
    return builder.sign(signer_key, hashes.SHA256())


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def x5c(*certificates: x509.Certificate) -> list[str]:
    return [
        base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in certificates
    ]


@dataclass
class SigningKey:
    """A private key, its certificate and the algorithm it signs with."""

    key: PrivateKey
    cert: x509.Certificate
    algorithm: str

    @classmethod
    def create(cls, kind: str = "ec", name: str = "token-signer") -> SigningKey:
        key = new_key(kind)
        return cls(key, certificate(key, name=name), "RS256" if kind == "rsa" else "ES256")

    def jwk(self) -> dict[str, Any]:
        """The public key as a JWK."""
        public = self.key.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            return jwt.algorithms.ECAlgorithm.to_jwk(public, as_dict=True)
        return jwt.algorithms.RSAAlgorithm.to_jwk(public, as_dict=True)

    @property
    def kid(self) -> str:
        public = self.key.public_key()
        return libtrust_key_id(public)


def access(*scopes: tuple[str, str, Iterable[str]]) -> list[dict[str, Any]]:
    return [{"type": t, "name": n, "actions": list(a)} for t, n, a in scopes]


@dataclass
class Issuer:
    """Mints tokens for one service, signed by ``signer``."""

    signer: SigningKey
    issuer: str = ISSUER
    service: str = SERVICE

    def write_bundle(self, path: Path, *extra: x509.Certificate) -> Path:
        path.write_bytes(pem(self.signer.cert, *extra))
        return path

    def mint(
        self,
        grants: Iterable[tuple[str, str, Iterable[str]]] = (),
        *,
        subject: str = "alice",
        lifetime: float = 300,
        claims: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
        key: Any = None,
        algorithm: str | None = None,
    ) -> str:
        """A token granting ``grants`` ((type, name, actions)...). By default the header
        carries ``kid`` (libtrust ID) and ``x5c`` (the signer's certificate); ``headers``
        replaces that header, ``claims`` adds to or overrides the claims (``None`` removes)."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + int(lifetime),
            "nbf": now - 5,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access(*grants),
        }
        for name, value in (claims or {}).items():
            if value is None:
                body.pop(name, None)
            else:
                body[name] = value
        header = (
            dict(headers)
            if headers is not None
            else {"kid": self.signer.kid, "x5c": x5c(self.signer.cert)}
        )
        return jwt.encode(
            body,
            key if key is not None else self.signer.key,
            algorithm=algorithm or self.signer.algorithm,
            headers=header,
        )
