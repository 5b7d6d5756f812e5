"""``S3Driver``: the ``StorageDriver`` over one bucket."""

from __future__ import annotations

import asyncio
import builtins
import functools
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dockyard.config.storage import S3_DIAL_TIMEOUT, S3_READ_TIMEOUT, S3Config
from dockyard.storage.base import FileInfo, InvalidOffset, InvalidPath, PathNotFound, check_path
from dockyard.storage.s3.bucket import (
    Bucket,
    Changed,
    Missing,
    ObjectOptions,
    OutOfRange,
    S3Error,
)
from dockyard.storage.s3.client import make_client
from dockyard.storage.s3.layout import Layout, visible
from dockyard.storage.s3.parts import MAX_PART_SIZE, MIN_PART_SIZE
from dockyard.storage.s3.presigned import PresignedUrls
from dockyard.storage.s3.ranges import (
    Interrupted,
    RangeStream,
    SocketRanges,
    proxied,
    ssl_context,
)
from dockyard.storage.s3.writer import S3Writer, Transfer, copy_range, open_writer

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3.client import S3Client

__all__ = ["S3Driver"]

MiB = 1 << 20

log = logging.getLogger("dockyard.storage.s3")

_CONNECTIONS = 64
"""Requests in flight at once, per driver made from config (threads and pooled connections)."""

# Reads: one ranged GET for the whole read, its body taken a chunk at a time, as Distribution
# reads. A body cut short or stalled (a slow client keeps it paused for long; a store may drop it)
# is resumed from where it stopped, with If-Match so that the rest comes from the same version, up
# to _RESUMES times in a row without progress. (Windows of 64 MiB, one GET each, cost an S3 server
# that reads a whole object for each range, as moto does, its size per GET.) Reading pauses once
# _READ_QUEUED chunks wait for the client: with one 4 MiB chunk, receiving from S3 and sending to
# the client took turns, and each fresh 4 MiB buffer cost page faults. Two chunks keep both sides
# moving; each chunk costs a pass through the response's layers and a hand-off to the HTTP
# server's thread, so 2 MiB x 2 spends less per GiB than 1 MiB x 4 for the same memory (server CPU
# 0.47 s/GiB against 0.50, 8 clients; moto, 64 MiB blobs). _READ_CHUNK is the largest: ``pacing``
# sizes chunks by how fast the client takes them, so a slow one holds small ones. Ranges up to
# _WHOLE_MAX are read in one request on boto3's pooled connections (a connect of their own would
# cost more than the read).
_READ_CHUNK = 2 * MiB
_READ_QUEUED = 2
# Through boto3 (a store behind a proxy) each chunk costs a thread hop: fewer, larger ones.
_THREAD_CHUNK = 4 * MiB
_RESUMES = 3
_WHOLE_MAX = 2 * MiB


def _close_body(body: Any, _done: object) -> None:
    body.close()


async def _once(data: bytes) -> AsyncGenerator[bytes, None]:
    yield data


async def _drain(stream: RangeStream) -> AsyncGenerator[bytes, None]:
    try:
        async for chunk in stream:
            yield chunk
    finally:
        stream.close()


REDIRECT_SECONDS = 20 * 60
"""How long a presigned URL stays valid."""
_READ_URL_SECONDS = 5 * 60
"""How long the presigned URL of a direct read stays valid (it is used at once)."""


def _object_path(path: str) -> str:
    """Check a path that must name an object or directory below the root (not the root)."""
    if not path:
        raise InvalidPath(path)
    return check_path(path)


def _join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name


class S3Driver:
    """A :class:`~dockyard.storage.base.StorageDriver` over an S3 bucket.

    Directories are key prefixes: one exists while some key lies below it. They have no time of
    their own: ``stat`` gives that of the first key below, ``walk`` the time of listing. A path
    whose object is being written (a writer closed but not committed) is not an object until
    ``commit()``; its directory shows, so that upload purging finds it.
    """

    name = "s3"

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        *,
        rootdirectory: str = "",
        chunksize: int = 10 * MiB,
        copy_chunksize: int = 32 * MiB,
        copy_concurrency: int = 100,
        copy_threshold: int = 32 * MiB,
        options: ObjectOptions | None = None,
        concurrency: int = 64,
        owns_client: bool = False,
        direct_reads: bool = True,
        verify: bool | str | None = None,
        dial_timeout: float = S3_DIAL_TIMEOUT,
        read_timeout: float = S3_READ_TIMEOUT,
    ) -> None:
        """``direct_reads``: stream large reads on the event loop's own sockets (see
        ``ranges``) rather than through boto3, unless the endpoint is behind a proxy from the
        environment. ``verify``, ``dial_timeout`` and ``read_timeout``: for those sockets, as
        the client's own settings of those names."""
        if not MIN_PART_SIZE <= chunksize <= MAX_PART_SIZE:
            raise ValueError(f"chunksize must be between {MIN_PART_SIZE} and {MAX_PART_SIZE}")
        if not MIN_PART_SIZE <= copy_chunksize <= MAX_PART_SIZE:
            raise ValueError(f"copy_chunksize must be between {MIN_PART_SIZE} and {MAX_PART_SIZE}")
        if not 0 <= copy_threshold <= MAX_PART_SIZE:
            raise ValueError(f"copy_threshold must be between 0 and {MAX_PART_SIZE}")
        self._bucket = Bucket(client, bucket, options, concurrency)
        self._urls = PresignedUrls(self._bucket.presign)
        self._layout = Layout(rootdirectory)
        self._transfer = Transfer(chunksize, copy_chunksize, max(1, copy_concurrency))
        self._copy_threshold = copy_threshold
        self._owns_client = owns_client
        endpoint = client.meta.endpoint_url
        self._sockets = (
            SocketRanges(
                self._presign_read,
                ssl_context(endpoint.partition(":")[0], verify),
                chunk=_READ_CHUNK,
                queued=_READ_QUEUED,
                dial=dial_timeout,
                timeout=read_timeout,
            )
            if direct_reads and not proxied(endpoint)
            else None
        )

    @classmethod
    def from_config(cls, config: S3Config) -> S3Driver:
        """The driver for a ``storage.s3`` section, with its own client."""
        return cls(
            make_client(config, connections=_CONNECTIONS),
            config.bucket,
            rootdirectory=config.rootdirectory,
            chunksize=config.chunksize,
            copy_chunksize=config.multipartcopychunksize,
            copy_concurrency=config.multipartcopymaxconcurrency,
            copy_threshold=config.multipartcopythresholdsize,
            options=ObjectOptions(
                storage_class=None if config.storageclass == "NONE" else config.storageclass,
                acl=None if config.objectacl == "private" else config.objectacl,
                encrypt=config.encrypt,
                kms_key_id=config.keyid if config.encrypt else None,
            ),
            concurrency=_CONNECTIONS,
            owns_client=True,
            verify=False if config.skipverify else None,
            dial_timeout=config.dialtimeout,
            read_timeout=config.readtimeout,
        )

    @property
    def bucket(self) -> str:
        return self._bucket.name

    @property
    def root(self) -> str:
        """The key prefix everything lives under (``rootdirectory``), without slashes."""
        return self._layout.root

    def close(self) -> None:
        """Release the connections of a client the driver made."""
        if self._owns_client:
            self._bucket.client.close()

    # -- whole objects -------------------------------------------------------------------------

    async def get_content(self, path: str) -> bytes:
        try:
            data, _ = await self._bucket.get(self._layout.key(_object_path(path)))
        except Missing:
            raise PathNotFound(path) from None
        return data

    async def put_content(self, path: str, data: bytes) -> None:
        await self._bucket.put(self._layout.key(_object_path(path)), data)

    # -- streams -------------------------------------------------------------------------------

    async def reader(
        self, path: str, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        key = self._layout.key(_object_path(path))
        if offset < 0 or (length is not None and length < 0):
            raise InvalidOffset(path, offset)
        etag: str | None = None
        if length is not None and length > _WHOLE_MAX and self._sockets is not None:
            # No HEAD (a round trip): the first GET says whether the range exists and which
            # version of the object a resumed read must match.
            end = offset + length
        else:
            head = await self._bucket.head(key)
            if head is None:
                raise PathNotFound(path)
            end = head.size if length is None else offset + length
            if offset > head.size or end > head.size:
                raise InvalidOffset(path, offset)
            etag = head.etag
        position = offset
        failed_at, stuck = -1, 0
        while position < end:
            try:
                chunks, etag = await self._open_window(key, position, end, etag)
            except Missing:
                if position == offset:
                    raise PathNotFound(path) from None
                raise S3Error(f"{path} was deleted while being read") from None
            except Changed:
                raise S3Error(f"{path} changed while being read") from None
            except OutOfRange:
                if position == offset:
                    raise InvalidOffset(path, offset) from None
                raise S3Error(f"{path} changed while being read") from None
            try:
                async for chunk in chunks:
                    position += len(chunk)
                    yield chunk
            except Interrupted as interrupted:
                stuck = stuck + 1 if position == failed_at else 1
                failed_at = position
                if stuck > _RESUMES or etag is None:
                    raise
                log.info("resuming %s at byte %d: %s", path, position, interrupted)
                continue
            finally:
                await chunks.aclose()
            if position < end:
                raise S3Error(f"{path}: response ended early at {position}")

    async def _open_window(
        self, key: str, start: int, end: int, etag: str | None
    ) -> tuple[AsyncGenerator[bytes, None], str | None]:
        """Request ``[start, end)`` (of version ``etag``, or any without one); the chunks of
        the response and the version they come from. Small ranges take one request on
        boto3's pooled connections; larger ones stream over a socket of their own, or through
        boto3 when the store is reached through a proxy."""
        if self._sockets is not None and (end - start > _WHOLE_MAX or etag is None):
            stream = await self._sockets.open(key, start, end, etag)
            return _drain(stream), stream.etag or etag
        assert etag is not None, "boto3 reads follow a HEAD"
        if end - start <= _WHOLE_MAX:
            return _once(await self._bucket.read_range(key, start, end, etag)), etag
        return self._read_ahead(await self._bucket.open_range(key, start, end, etag)), etag

    async def _read_ahead(self, body: StreamingBody) -> AsyncGenerator[bytes, None]:
        # Read one chunk ahead: the next chunk arrives from S3 while this one is sent.
        read = functools.partial(body.read, _THREAD_CHUNK)
        pending: asyncio.Future[bytes] | None = asyncio.ensure_future(self._bucket.run(read))
        try:
            while pending is not None:
                chunk = await pending
                pending = None
                if not chunk:
                    return
                pending = asyncio.ensure_future(self._bucket.run(read))
                yield chunk
        finally:
            # Closing drops the connection of an unfinished response; no other I/O, so it
            # also works when the generator is finalised without a running loop. A read
            # still in flight closes the body when it ends, never under its feet.
            if pending is not None and not pending.done():
                pending.add_done_callback(functools.partial(_close_body, body))
            else:
                body.close()

    async def writer(self, path: str, offset: int = 0) -> S3Writer:
        key = self._layout.key(_object_path(path))
        return await open_writer(self._bucket, path, key, offset, self._transfer)

    # -- namespace -----------------------------------------------------------------------------

    async def stat(self, path: str) -> FileInfo:
        key = self._layout.key(_object_path(path))
        head = await self._bucket.head(key)
        if head is not None:
            return FileInfo(path, head.size, head.modified, False)
        # A directory has no time of its own: take that of the first key below it.
        modified = await self._bucket.first_below(self._layout.children(path))
        if modified is None:
            raise PathNotFound(path)
        return FileInfo(path, 0, modified, True)

    async def list(self, path: str) -> list[str]:
        return [info.path for info in await self._scan(check_path(path))]

    async def _scan(self, path: str) -> builtins.list[FileInfo]:
        """The visible children of a directory, sorted by name; directories first when a name
        is both (S3 allows a key and a prefix to share a name)."""
        listing = await self._bucket.listing(self._layout.children(path))
        if listing.empty and path:
            raise PathNotFound(path)
        now = datetime.now(UTC)
        found = {
            name: FileInfo(_join(path, name), 0, now, True)
            for name in listing.directories
            if visible(name)
        }
        for name, size, modified in listing.objects:
            if visible(name) and name not in found:
                found[name] = FileInfo(_join(path, name), size, modified, False)
        return [found[name] for name in sorted(found)]

    async def move(self, source: str, destination: str) -> None:
        src = self._layout.key(_object_path(source))
        dst = self._layout.key(_object_path(destination))
        head = await self._bucket.head(src)
        if head is None:
            raise PathNotFound(source)
        if src == dst:
            return
        try:
            if head.size <= self._copy_threshold:
                await self._bucket.copy(src, head.etag, dst)
            else:
                await self._multipart_copy(src, head.etag, head.size, dst)
        except (Changed, Missing):
            raise PathNotFound(source) from None
        await self._bucket.delete([src])

    async def _multipart_copy(self, source: str, etag: str, size: int, destination: str) -> None:
        upload = await self._bucket.create_upload(destination)
        try:
            parts = await copy_range(
                self._bucket, source, etag, destination, upload, size, self._transfer
            )
            await self._bucket.complete(destination, upload, parts)
        except BaseException:
            await self._bucket.abort(destination, upload)
            raise

    async def delete(self, path: str) -> None:
        """Delete the object, every key below the path, and unfinished uploads of either."""
        key = self._layout.key(_object_path(path))
        below = self._layout.children(path)
        head, tail, uploads, removed = await asyncio.gather(
            self._bucket.head(key),
            self._bucket.head(Layout.tail(key)),
            self._bucket.uploads(key),
            self._bucket.delete_below(below),
        )
        ours = [(k, u) for k, u in uploads if k == key or k.startswith(below)]
        if head is None and tail is None and not ours and not removed:
            raise PathNotFound(path)
        doomed = [k for k, info in ((key, head), (Layout.tail(key), tail)) if info is not None]
        await asyncio.gather(
            self._bucket.delete(doomed), *(self._bucket.abort(k, u) for k, u in ours)
        )

    async def walk(self, path: str) -> AsyncIterator[FileInfo]:
        pending = [iter(await self._scan(check_path(path)))]
        while pending:
            info = next(pending[-1], None)
            if info is None:
                pending.pop()
                continue
            yield info
            if info.is_dir:
                try:
                    children = await self._scan(info.path)
                except PathNotFound:
                    continue  # deleted since it was listed
                pending.append(iter(children))

    # -- direct access -------------------------------------------------------------------------

    async def _presign_read(self, key: str) -> str:
        return await self._urls.get(key, "GET", _READ_URL_SECONDS)

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        key = self._layout.key(_object_path(path))
        if method not in ("GET", "HEAD"):
            return None
        return await self._urls.get(key, method, REDIRECT_SECONDS)

    def local_path(self, path: str) -> str | None:
        _object_path(path)
        return None
