"""The keys Dockyard's own token server signs with, read from PEM files.

Several keys may be configured, for rotation: the first signs new tokens, and all of them
verify, so that tokens signed before a new key was put first stay valid until they expire.
Each key is named in a token's ``kid`` header by its RFC 7638 thumbprint, and all are
published as a JSON Web Key Set for other services to verify tokens with.

EC keys sign with the ES algorithm of their curve (P-256: ES256, P-384: ES384, P-521:
ES512), RSA keys of at least 2048 bits with RS256. With no key configured, one is generated
in the data directory at the first start and kept there (:meth:`SigningKey.load_or_create`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from dockyard.auth.keys import TrustedKeys, UntrustedKey, jwk_thumbprint

__all__ = ["PrivateKey", "SigningKey", "SigningKeys"]

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    private: PrivateKey

    @classmethod
    def of(cls, private: Any, source: str = "key") -> SigningKey:
        """The signing key for a private key object; :class:`UntrustedKey` if unsuitable."""
        if isinstance(private, ec.EllipticCurvePrivateKey):
            algorithm = _EC_ALGORITHMS.get(private.curve.name)
            if algorithm is None:
                raise UntrustedKey(f"{source}: unsupported curve {private.curve.name}")
        elif isinstance(private, rsa.RSAPrivateKey):
            if private.key_size < MIN_RSA_BITS:
                raise UntrustedKey(f"{source}: RSA keys need at least {MIN_RSA_BITS} bits")
            algorithm = "RS256"
        else:
            raise UntrustedKey(
                f"{source}: unsupported key type {type(private).__name__} (use EC or RSA)"
            )
        kid = jwk_thumbprint(private.public_key())
        assert kid is not None  # every EC curve above and RSA have a thumbprint
        return cls(kid=kid, algorithm=algorithm, private=private)

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """The private key of an unencrypted PEM file."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UntrustedKey(f"cannot read {path}: {exc.strerror}") from None
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise UntrustedKey(f"{path}: not an unencrypted PEM private key: {exc}") from None
        return cls.of(private, str(path))

    @classmethod
    def generate(cls) -> SigningKey:
        """A new P-256 key (ES256)."""
        return cls.of(ec.generate_private_key(ec.SECP256R1()), "generated key")

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKey:
        """The key at ``path``, first generated there (ES256, mode 0600) if there is none.

        Every worker and replica sharing the directory may call this at once: each writes
        a complete key to a file of its own and hard-links it to ``path``, which fails if
        ``path`` exists, so the first link wins and everyone reads the winner's key.
        """
        if path.exists():
            return cls.load(path)
        key = cls.generate()
        pem = key.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UntrustedKey(f"cannot create a signing key at {path}: {exc.strerror}") from None
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as out:
                out.write(pem)
                out.flush()
                os.fsync(out.fileno())
            os.link(temporary, path)
        except FileExistsError:
            return cls.load(path)
        except OSError as exc:
            raise UntrustedKey(f"cannot create a signing key at {path}: {exc.strerror}") from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        return key

    def jwk(self) -> dict[str, Any]:
        """The public half as a JWK, with its ``kid``, ``alg`` and ``use``."""
        public = self.private.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            jwk: dict[str, Any] = jwt.algorithms.ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


class SigningKeys:
    """The configured keys, the first of which signs."""

    def __init__(self, keys: Sequence[SigningKey]) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        self.keys = tuple(keys)

    @classmethod
    def load(cls, paths: Sequence[Path]) -> SigningKeys:
        return cls([SigningKey.load(path) for path in paths])

    @property
    def signer(self) -> SigningKey:
        return self.keys[0]

    @property
    def algorithms(self) -> frozenset[str]:
        return frozenset(key.algorithm for key in self.keys)

    def trusted(self) -> TrustedKeys:
        """The public keys by ``kid``, for :class:`dockyard.auth.jwt.TokenVerifier`."""
        trusted = TrustedKeys()
        for key in self.keys:
            trusted.add(key.kid, key.private.public_key())
        return trusted

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        # A kid listed twice (the same key configured twice) is published once.
        unique = {key.kid: key for key in self.keys}
        return {"keys": [key.jwk() for key in unique.values()]}

    def sign(self, claims: Mapping[str, Any]) -> str:
        signer = self.signer
        return jwt.encode(
            dict(claims),
            signer.private,
            algorithm=signer.algorithm,
            headers={"kid": signer.kid, "typ": "JWT"},
        )
