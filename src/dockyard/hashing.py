"""Resumable SHA-256 / SHA-512 whose state can be saved and restored.

An upload can continue on any worker or replica, so its running hash must survive between
requests. ``hashlib`` objects cannot be serialised; OpenSSL's low-level ``SHA256_CTX`` and
``SHA512_CTX`` are plain structs, so we drive them through ``ctypes`` and save their bytes.
Speed equals ``hashlib`` (both use the same OpenSSL code). Where libcrypto cannot be loaded,
:func:`available` is false and callers rebuild the state by re-reading the upload.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
from dataclasses import dataclass

__all__ = ["ResumableHash", "available", "new"]


@dataclass(frozen=True, slots=True)
class _Algorithm:
    name: str
    ctx_size: int
    digest_size: int
    init: str
    update: str
    final: str


_ALGORITHMS = {
    "sha256": _Algorithm("sha256", 112, 32, "SHA256_Init", "SHA256_Update", "SHA256_Final"),
    "sha512": _Algorithm("sha512", 216, 64, "SHA512_Init", "SHA512_Update", "SHA512_Final"),
}


@functools.cache
def _libcrypto() -> ctypes.CDLL | None:
    path = ctypes.util.find_library("crypto")
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(path)
        for algorithm in _ALGORITHMS.values():
            getattr(lib, algorithm.update).argtypes = [
                ctypes.c_void_p,
                ctypes.c_void_p,
                ctypes.c_size_t,
            ]
            getattr(lib, algorithm.init).argtypes = [ctypes.c_void_p]
            getattr(lib, algorithm.final).argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    except (OSError, AttributeError):
        return None
    return lib


def available() -> bool:
    return _libcrypto() is not None


class ResumableHash:
    """A running hash whose ``state()`` bytes restore it elsewhere with ``new(alg, state)``."""

    __slots__ = ("_algorithm", "_ctx", "_fallback", "_lib")

    def __init__(self, algorithm: str, state: bytes | None = None) -> None:
        self._algorithm = _ALGORITHMS[algorithm]
        self._lib = _libcrypto()
        self._fallback: hashlib._Hash | None = None
        if self._lib is None:
            if state:
                raise ValueError("saved hash state needs libcrypto")
            self._fallback = hashlib.new(algorithm)
            self._ctx = ctypes.create_string_buffer(0)
            return
        if state:
            if len(state) != self._algorithm.ctx_size:
                raise ValueError("hash state has the wrong size")
            self._ctx = ctypes.create_string_buffer(state, self._algorithm.ctx_size)
        else:
            self._ctx = ctypes.create_string_buffer(self._algorithm.ctx_size)
            getattr(self._lib, self._algorithm.init)(self._ctx)

    @property
    def name(self) -> str:
        return self._algorithm.name

    @property
    def resumable(self) -> bool:
        return self._fallback is None

    def update(self, data: bytes | bytearray) -> None:
        if self._fallback is not None:
            self._fallback.update(data)
            return
        assert self._lib is not None
        # A bytearray is passed by address (no copy); bytes are passed as they are.
        buffer = (
            (ctypes.c_char * len(data)).from_buffer(data) if isinstance(data, bytearray) else data
        )
        getattr(self._lib, self._algorithm.update)(self._ctx, buffer, len(data))

    def state(self) -> bytes:
        """The saved state; empty when this hash cannot be resumed elsewhere."""
        return b"" if self._fallback is not None else self._ctx.raw

    def hexdigest(self) -> str:
        if self._fallback is not None:
            return self._fallback.copy().hexdigest()
        assert self._lib is not None
        ctx = ctypes.create_string_buffer(self._ctx.raw, self._algorithm.ctx_size)
        out = ctypes.create_string_buffer(self._algorithm.digest_size)
        getattr(self._lib, self._algorithm.final)(out, ctx)
        return out.raw.hex()


def new(algorithm: str, state: bytes | None = None) -> ResumableHash:
    return ResumableHash(algorithm, state)
