"""Writing one object as a multipart upload that any process can continue.

S3 cannot append. A writer gathers what it is given until it makes a part of at least
``chunksize`` bytes, then uploads that part to a multipart upload (opened with the first part).
``close()`` leaves the upload open and keeps the bytes not yet in a part in a *tail* object
beside the key; the tail's metadata says at which offset it starts and which upload it follows,
so a tail left behind by a writer that died after uploading another part is recognised as stale.
Nothing lives only in memory between requests: ``writer(path, offset)`` on any process finds the
upload (ListMultipartUploads, ListParts) and the tail, checks that they reach ``offset``, and
continues. ``commit()`` uploads the rest as the last part and completes the upload, or stores a
small object with one PutObject, then drops the tail.

Continuing a committed object, or cutting an open one back inside its uploaded parts, starts a
new multipart upload whose first parts are server-side copies of the kept range (UploadPartCopy);
a kept range under S3's 5 MiB part minimum is read back into the writer instead. Until
``commit()``, readers see the previous object under the path, if any.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from dockyard.storage.base import InvalidOffset, PathNotFound, StorageError
from dockyard.storage.s3.bucket import Bucket, Missing
from dockyard.storage.s3.layout import Layout
from dockyard.storage.s3.parts import MAX_PARTS, MIN_PART_SIZE, Part, plan

__all__ = ["S3Writer", "Transfer", "copy_range", "open_writer"]

# Tail metadata (S3 user metadata keys are lower case).
_START = "start"
_UPLOAD = "upload"


@dataclass(frozen=True, slots=True)
class Transfer:
    """How the driver cuts objects into parts."""

    chunksize: int
    """Smallest part a writer uploads (all but the last part of an object)."""
    copy_chunksize: int
    """Part size of server-side multipart copies."""
    copy_concurrency: int
    """Parts of one multipart copy in flight at once."""


async def copy_range(
    bucket: Bucket,
    source: str,
    etag: str,
    key: str,
    upload: str,
    total: int,
    transfer: Transfer,
) -> list[Part]:
    """Make ``[0, total)`` of ``source`` the first parts of ``upload`` by server-side copies."""
    gate = asyncio.Semaphore(transfer.copy_concurrency)

    async def copy(number: int, start: int, end: int) -> Part:
        async with gate:
            return await bucket.copy_part(source, etag, key, upload, number, start, end)

    ranges = plan(total, transfer.copy_chunksize)
    return list(
        await asyncio.gather(
            *(copy(number, start, end) for number, (start, end) in enumerate(ranges, 1))
        )
    )


class S3Writer:
    """Writes one object; see the module docstring. Not for concurrent use."""

    def __init__(
        self,
        bucket: Bucket,
        key: str,
        transfer: Transfer,
        offset: int = 0,
        upload: str | None = None,
        parts: list[Part] | None = None,
        pending: bytes = b"",
        tail_exists: bool = False,
    ) -> None:
        self._bucket = bucket
        self._key = key
        self._tail = Layout.tail(key)
        self._transfer = transfer
        self._size = offset
        self._upload = upload
        self._parts = parts or []
        # Written bytes not yet in a part; ``write`` may keep the caller's buffers (the
        # protocol allows it), so gathering them costs no copy until a part is made.
        self._pending: list[bytes | bytearray] = [pending] if pending else []
        self._pending_size = len(pending)
        self._tail_exists = tail_exists
        self._done = False

    @property
    def size(self) -> int:
        return self._size

    @property
    def _uploaded(self) -> int:
        return sum(part.size for part in self._parts)

    def _check_open(self) -> None:
        if self._done:
            raise StorageError(f"writer for {self._key} is closed")

    async def write(self, data: bytes | bytearray) -> None:
        self._check_open()
        if not data:
            return
        self._pending.append(data)
        self._pending_size += len(data)
        self._size += len(data)
        if self._pending_size >= self._transfer.chunksize:
            await self._upload_pending()

    async def _upload_pending(self) -> None:
        body = b"".join(self._pending)
        # From here on the joined copy is the only one the writer holds.
        self._pending = [body]
        if self._upload is None:
            self._upload = await self._bucket.create_upload(self._key)
        number = self._parts[-1].number + 1 if self._parts else 1
        if number > MAX_PARTS:
            raise StorageError(f"{self._key}: more than {MAX_PARTS} parts; raise chunksize")
        self._parts.append(await self._bucket.upload_part(self._key, self._upload, number, body))
        self._pending = []
        self._pending_size = 0

    async def close(self) -> None:
        if self._done:
            return
        self._done = True
        metadata = {_START: str(self._uploaded), _UPLOAD: self._upload or ""}
        await self._bucket.put(self._tail, b"".join(self._pending), metadata, scratch=True)
        self._pending = []

    async def commit(self) -> None:
        self._check_open()
        self._done = True
        body = b"".join(self._pending)
        self._pending = []
        if self._upload is None:
            await self._bucket.put(self._key, body)
        else:
            if body or not self._parts:
                number = self._parts[-1].number + 1 if self._parts else 1
                self._parts.append(
                    await self._bucket.upload_part(self._key, self._upload, number, body)
                )
            await self._bucket.complete(self._key, self._upload, self._parts)
        if self._tail_exists:
            await self._bucket.delete([self._tail])

    async def cancel(self) -> None:
        self._done = True
        self._pending = []
        await discard(self._bucket, self._key)


async def _open_uploads(bucket: Bucket, key: str) -> list[str]:
    """Ids of the multipart uploads in progress for exactly ``key``, oldest first."""
    return [upload for found, upload in await bucket.uploads(key) if found == key]


async def _abort_all(bucket: Bucket, key: str) -> None:
    for upload in await _open_uploads(bucket, key):
        await bucket.abort(key, upload)


async def discard(bucket: Bucket, key: str) -> None:
    """Remove the object at ``key`` with any unfinished state: uploads, tail."""
    await asyncio.gather(_abort_all(bucket, key), bucket.delete([key, Layout.tail(key)]))


@dataclass(frozen=True, slots=True)
class _Tail:
    data: bytes
    start: int
    upload: str


async def _read_tail(bucket: Bucket, key: str) -> _Tail | None:
    try:
        data, metadata = await bucket.get(Layout.tail(key))
    except Missing:
        return None
    try:
        start = int(metadata.get(_START, ""))
    except ValueError:
        start = -1  # not written by a writer: never matches, so never used
    return _Tail(data, start, metadata.get(_UPLOAD, ""))


@dataclass(frozen=True, slots=True)
class _Unfinished:
    """What ``close()`` left: an upload's parts and the tail after them."""

    upload: str | None
    parts: list[Part]
    tail: bytes

    @property
    def uploaded(self) -> int:
        return sum(part.size for part in self.parts)


async def _find_unfinished(bucket: Bucket, key: str) -> tuple[_Unfinished | None, bool]:
    """The unfinished object at ``key``, and whether a tail object (valid or not) exists."""
    uploads, tail = await asyncio.gather(_open_uploads(bucket, key), _read_tail(bucket, key))
    tail_seen = tail is not None
    upload: str | None = None
    if tail is not None and tail.upload:
        # The tail names the upload it follows; a tail whose upload is gone was left behind
        # by a commit that stopped before removing it.
        if tail.upload in uploads:
            upload = tail.upload
        else:
            tail = None
    elif uploads:
        # An upload begun after a tail-only close took the tail's bytes into its first part.
        upload = uploads[-1]
        tail = None
    parts: list[Part] = []
    if upload is not None:
        try:
            parts = await bucket.parts(key, upload)
        except Missing:
            upload, tail = None, None
    uploaded = sum(part.size for part in parts)
    if tail is not None and tail.start != uploaded:
        tail = None  # written before parts that now hold its bytes
    exists = tail is not None or bool(parts)
    found = _Unfinished(upload, parts, tail.data if tail else b"") if exists else None
    return found, tail_seen


async def open_writer(
    bucket: Bucket, path: str, key: str, offset: int, transfer: Transfer
) -> S3Writer:
    if offset < 0:
        raise InvalidOffset(path, offset)
    if offset == 0:
        await asyncio.gather(_abort_all(bucket, key), bucket.delete([Layout.tail(key)]))
        return S3Writer(bucket, key, transfer)
    unfinished, tail_exists = await _find_unfinished(bucket, key)
    if unfinished is None:
        return await _continue_object(bucket, path, key, offset, transfer, tail_exists)
    uploaded = unfinished.uploaded
    if offset > uploaded + len(unfinished.tail):
        raise InvalidOffset(path, offset)
    if offset >= uploaded:
        return S3Writer(
            bucket,
            key,
            transfer,
            offset,
            unfinished.upload,
            unfinished.parts,
            unfinished.tail[: offset - uploaded],
            tail_exists=True,
        )
    # Cut back inside an uploaded part, whose bytes S3 cannot hand back: finish the upload
    # as an object, then continue that object at ``offset``.
    assert unfinished.upload is not None
    await bucket.complete(key, unfinished.upload, unfinished.parts)
    return await _continue_object(bucket, path, key, offset, transfer, tail_exists=True)


async def _continue_object(
    bucket: Bucket, path: str, key: str, offset: int, transfer: Transfer, tail_exists: bool
) -> S3Writer:
    """A writer whose first ``offset`` bytes are those of the committed object at ``key``."""
    head = await bucket.head(key)
    if head is None:
        raise PathNotFound(path)
    if head.size < offset:
        raise InvalidOffset(path, offset)
    if offset < MIN_PART_SIZE:
        kept = await bucket.read_range(key, 0, offset, head.etag)
        return S3Writer(bucket, key, transfer, offset, pending=kept, tail_exists=tail_exists)
    upload = await bucket.create_upload(key)
    try:
        parts = await copy_range(bucket, key, head.etag, key, upload, offset, transfer)
    except BaseException:
        await bucket.abort(key, upload)
        raise
    return S3Writer(bucket, key, transfer, offset, upload, parts, tail_exists=tail_exists)
