"""Distribution's ``redirect`` storage middleware: blob downloads redirect to a base URL.

``middleware.storage: [{name: redirect, options: {baseurl: https://cdn.example.com/}}]`` wraps
any driver so that ``redirect_url`` answers ``<baseurl>/<path>``: a CDN or web server in front
of the bucket (or the directory) serves the bytes. Everything else goes to the wrapped driver.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from urllib.parse import urlsplit

from dockyard.storage.base import FileInfo, StorageDriver, StorageWriter

__all__ = ["RedirectMiddleware", "StorageMiddlewareError", "validate", "wrap"]


class StorageMiddlewareError(ValueError):
    """A ``middleware.storage`` entry that cannot be used; ``path`` names the key."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.reason = message


class RedirectMiddleware:
    def __init__(self, driver: StorageDriver, base_url: str) -> None:
        self._driver = driver
        self._base = base_url.rstrip("/")
        self.name = driver.name

    async def get_content(self, path: str) -> bytes:
        return await self._driver.get_content(path)

    async def put_content(self, path: str, data: bytes) -> None:
        await self._driver.put_content(path, data)

    def reader(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        return self._driver.reader(path, offset, length)

    async def writer(self, path: str, offset: int = 0) -> StorageWriter:
        return await self._driver.writer(path, offset)

    async def stat(self, path: str) -> FileInfo:
        return await self._driver.stat(path)

    async def list(self, path: str) -> list[str]:
        return await self._driver.list(path)

    async def move(self, source: str, destination: str) -> None:
        await self._driver.move(source, destination)

    async def delete(self, path: str) -> None:
        await self._driver.delete(path)

    def walk(self, path: str) -> AsyncIterator[FileInfo]:
        return self._driver.walk(path)

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        if method not in ("GET", "HEAD"):
            return None
        return f"{self._base}/{path}"

    def local_path(self, path: str) -> str | None:
        # Never serve locally: the point of the middleware is that the base URL serves.
        return None


def validate(entries: object) -> list[str]:
    """The base URLs of the enabled entries; ``StorageMiddlewareError`` for anything else."""
    if entries is None:
        return []
    if not isinstance(entries, Sequence) or isinstance(entries, str):
        raise StorageMiddlewareError("middleware.storage", "must be a list")
    bases: list[str] = []
    for index, entry in enumerate(entries):
        where = f"middleware.storage[{index}]"
        if not isinstance(entry, Mapping):
            raise StorageMiddlewareError(where, "must be a mapping with a name")
        if entry.get("disabled") is True:
            continue
        name = entry.get("name")
        if name != "redirect":
            raise StorageMiddlewareError(
                f"{where}.name", f"{name!r} is not supported (only 'redirect' is)"
            )
        options = entry.get("options") or {}
        base = options.get("baseurl") if isinstance(options, Mapping) else None
        if not isinstance(base, str) or urlsplit(base).scheme not in ("http", "https"):
            raise StorageMiddlewareError(
                f"{where}.options.baseurl", "must be an absolute http(s) URL"
            )
        bases.append(base)
    return bases


def wrap(driver: StorageDriver, entries: object) -> StorageDriver:
    """Apply ``middleware.storage`` entries in order (validated as :func:`validate` does)."""
    for base in validate(entries):
        driver = RedirectMiddleware(driver, base)
    return driver
