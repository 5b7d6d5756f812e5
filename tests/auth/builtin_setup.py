"""Signing key files and a built-in controller on a real SQLite database, for the tests of
``auth.builtin``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from dockyard.auth.base import Access
from dockyard.auth.builtin import BuiltinAccess, BuiltinSettings
from dockyard.auth.issuer import TokenIssuer
from dockyard.identity.base import IdentityStore
from dockyard.identity.passwords import Passwords
from dockyard.identity.sql import SqlIdentityStore
from dockyard.metadata.factory import open_store

__all__ = ["Builtin", "access_of", "builtin", "claims_of", "header_of", "write_key"]

# Cheap hashes: these tests are about who gets what, not about the hash's cost.
FAST = Passwords(time_cost=1, memory_cost=1024)


def write_key(path: Path, kind: str = "ec") -> Path:
    """A new unencrypted PEM private key at ``path``."""
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif kind == "p384":
        key = ec.generate_private_key(ec.SECP384R1())
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def header_of(token: str) -> dict[str, Any]:
    return jwt.get_unverified_header(token)


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def access_of(token: str) -> dict[tuple[str, str], list[str]]:
    return {(a["type"], a["name"]): a["actions"] for a in claims_of(token)["access"]}


@dataclass
class Builtin:
    access: BuiltinAccess
    store: IdentityStore

    @property
    def issuer(self) -> TokenIssuer:
        assert self.access.issuer is not None
        return self.access.issuer

    async def add_user(self, name: str, password: str = "secret", **kwargs: Any) -> None:
        await self.store.create_user(name, FAST.hash(password), **kwargs)

    async def token(self, subject: str | None, *wanted: Access) -> str:
        return (await self.issuer.issue(subject, list(wanted))).token


@asynccontextmanager
async def builtin(
    tmp_path: Path, params: dict[str, Any] | None = None, *, host: str | None = None
) -> AsyncIterator[Builtin]:
    """A controller on a fresh SQLite database; ``params`` default to one new EC key."""
    if params is None:
        params = {"signingkeys": [str(write_key(tmp_path / "key.pem"))]}
    content = await open_store(f"sqlite:///{tmp_path / 'dockyard.db'}")
    store = SqlIdentityStore(content.database)
    try:
        access = BuiltinAccess(
            BuiltinSettings.from_options(params), store, host=host, passwords=FAST
        )
        yield Builtin(access, store)
    finally:
        await content.close()
