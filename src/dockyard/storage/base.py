"""The ``StorageDriver`` seam: bytes at paths, and nothing else.

Drivers know nothing of digests, repositories or manifests; the core owns content addressing
and upload sessions. Paths are ``/``-separated, relative to the driver's root, made of
``[A-Za-z0-9._:-]`` components (no empty, ``.`` or ``..`` component, no leading ``/``).

Errors::

    StorageError
    ├── PathNotFound      the path does not exist
    ├── InvalidPath       the path breaks the grammar above
    ├── InvalidOffset     a read or write offset beyond the end of the content
    └── StorageUnavailable  the store did not answer (unreachable, timed out, failing):
                          nothing was changed that the caller must know of; try again later
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

__all__ = [
    "FileInfo",
    "InvalidOffset",
    "InvalidPath",
    "PathNotFound",
    "StorageDriver",
    "StorageError",
    "StorageUnavailable",
    "StorageWriter",
    "check_path",
]


class StorageError(Exception):
    """Root of the errors a driver raises."""


class StorageUnavailable(StorageError):
    """The store could not be reached or failed to answer: a condition of the moment (the
    registry answers 503), not of the request."""


class PathNotFound(StorageError):
    def __init__(self, path: str) -> None:
        super().__init__(f"path not found: {path}")
        self.path = path


class InvalidPath(StorageError):
    def __init__(self, path: str) -> None:
        super().__init__(f"invalid path: {path!r}")
        self.path = path


class InvalidOffset(StorageError):
    def __init__(self, path: str, offset: int) -> None:
        super().__init__(f"invalid offset {offset} for {path}")
        self.path = path
        self.offset = offset


_COMPONENT = re.compile(r"[A-Za-z0-9._:-]+")


def check_path(path: str) -> str:
    """Validate a driver path; ``""`` names the root (valid for list and walk only)."""
    if path == "":
        return path
    for part in path.split("/"):
        if part in (".", "..") or _COMPONENT.fullmatch(part) is None:
            raise InvalidPath(path)
    return path


@dataclass(frozen=True, slots=True)
class FileInfo:
    path: str
    size: int
    modified: datetime
    is_dir: bool


class StorageWriter(Protocol):
    """Writes one object; nothing is visible under the path in a torn state after a crash
    beyond what was written (appends are never reordered)."""

    @property
    def size(self) -> int:
        """Bytes in the object so far: the starting offset plus everything written."""
        ...

    async def write(self, data: bytes | bytearray) -> None:
        """Append ``data``; the writer may keep a reference to it, so do not change it after."""
        ...

    async def close(self) -> None:
        """Stop writing and keep what was written, so a later writer can continue it."""
        ...

    async def commit(self) -> None:
        """Make the content durable (fsync or finish the multipart upload) and close."""
        ...

    async def cancel(self) -> None:
        """Discard the object and close."""
        ...


@runtime_checkable
class StorageDriver(Protocol):
    """Bytes at paths. Every method is safe to call concurrently from many tasks."""

    name: str

    async def get_content(self, path: str) -> bytes:
        """The whole object; for small objects only. Raises ``PathNotFound``."""
        ...

    async def put_content(self, path: str, data: bytes) -> None:
        """Store the object atomically, replacing any previous one."""
        ...

    def reader(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """Stream ``length`` bytes (all when None) from ``offset``. Raises ``PathNotFound`` or
        ``InvalidOffset`` on first iteration when the range does not exist."""
        ...

    async def writer(self, path: str, offset: int = 0) -> StorageWriter:
        """A writer continuing the object at ``offset`` (0 starts afresh). Content beyond
        ``offset`` is discarded. ``InvalidOffset`` if the object is shorter than ``offset``;
        ``PathNotFound`` if ``offset > 0`` and there is no object."""
        ...

    async def stat(self, path: str) -> FileInfo:
        """Raises ``PathNotFound``."""
        ...

    async def list(self, path: str) -> list[str]:
        """Full paths of the direct children of a directory, sorted. ``PathNotFound`` if the
        directory does not exist."""
        ...

    async def move(self, source: str, destination: str) -> None:
        """Atomically replace ``destination`` with ``source``. ``PathNotFound`` if no source."""
        ...

    async def delete(self, path: str) -> None:
        """Delete an object or a whole directory tree. ``PathNotFound`` if nothing is there."""
        ...

    def walk(self, path: str) -> AsyncIterator[FileInfo]:
        """Every object and directory below ``path``, depth first, in sorted order."""
        ...

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        """A URL the client can fetch the object from directly, or None."""
        ...

    def local_path(self, path: str) -> str | None:
        """An OS path for zero-copy sends (filesystem driver only), or None."""
        ...
