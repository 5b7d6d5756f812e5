"""One bucket seen through a boto3 client.

Every request runs in a worker thread (boto3 is synchronous), at most ``concurrency`` at a time,
so the event loop never waits on the network. S3's error responses become storage errors::

    StorageError
    └── S3Error       a request the store refused or could not answer
        ├── Missing      no such key or multipart upload
        ├── Changed      the object changed under a conditional request
        ├── OutOfRange   a ranged read beyond the end of the object
        └── S3Unavailable  no answer (connection refused or lost, timeout) or a 5xx, after
                         retries (also a ``StorageUnavailable``)
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from anyio import CapacityLimiter
from anyio.to_thread import run_sync
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from dockyard.mediatypes import OCTET_STREAM
from dockyard.storage.base import StorageError, StorageUnavailable
from dockyard.storage.s3.parts import Part

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

__all__ = [
    "Bucket",
    "Changed",
    "Head",
    "Listing",
    "Missing",
    "ObjectOptions",
    "OutOfRange",
    "S3Error",
    "S3Unavailable",
    "error_for",
    "translate",
]

T = TypeVar("T")

_MISSING_CODES = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchUpload"})
_CHANGED_CODES = frozenset({"PreconditionFailed", "412"})
_RANGE_CODES = frozenset({"InvalidRange", "416"})
# DeleteObjects takes at most this many keys per request.
_DELETE_BATCH = 1000


class S3Error(StorageError):
    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class Missing(S3Error):
    """The key or multipart upload does not exist."""


class Changed(S3Error):
    """A conditional request found the object changed."""


class OutOfRange(S3Error):
    """A ranged read reaches beyond the end of the object."""


class S3Unavailable(S3Error, StorageUnavailable):
    """The store did not answer, or answered with a server error, on every attempt."""


def error_for(operation: str, code: str, message: str, status: int = 0) -> S3Error:
    """The storage error for S3's answer ``code`` (with HTTP ``status``) to ``operation``."""
    text = f"S3 {operation}: {code} {message}".rstrip()
    if status >= 500:
        return S3Unavailable(text, code)
    if code in _MISSING_CODES:
        return Missing(text, code)
    if code in _CHANGED_CODES:
        return Changed(text, code)
    if code in _RANGE_CODES:
        return OutOfRange(text, code)
    return S3Error(text, code)


def translate(exc: ClientError | BotoCoreError) -> S3Error:
    """The storage error for what boto3 raised: S3's answer, or no answer at all."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code, message = str(error.get("Code", "")), str(error.get("Message", ""))
        return error_for(exc.operation_name, code, message, status)
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return S3Unavailable(f"S3: {exc}")
    return S3Error(f"S3: {exc}")


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class ObjectOptions:
    """What every object the driver creates is stored with."""

    storage_class: str | None = None
    """None (Distribution's ``NONE``) leaves it to the bucket."""
    acl: str | None = None
    """A canned ACL; None sends none (buckets that enforce ownership refuse any ACL)."""
    encrypt: bool = False
    kms_key_id: str | None = None
    """With ``encrypt``: SSE-KMS under this key; without one, SSE-S3 (AES256)."""

    def create_args(self, scratch: bool = False) -> dict[str, Any]:
        """Arguments for PutObject, CreateMultipartUpload and CopyObject. Scratch objects
        (tails) keep the bucket's default storage class: they live for minutes, and colder
        classes bill a minimum duration.

        Every object is typed as the registry serves a blob: a pull redirected to the store
        then gets the same ``Content-Type`` as one the registry streams (S3's default for an
        untyped object is ``binary/octet-stream``)."""
        args: dict[str, Any] = {"ContentType": OCTET_STREAM}
        if self.encrypt:
            args["ServerSideEncryption"] = "aws:kms" if self.kms_key_id else "AES256"
            if self.kms_key_id:
                args["SSEKMSKeyId"] = self.kms_key_id
        if self.acl:
            args["ACL"] = self.acl
        if self.storage_class and not scratch:
            args["StorageClass"] = self.storage_class
        return args


@dataclass(frozen=True, slots=True)
class Head:
    size: int
    etag: str
    modified: datetime


@dataclass(frozen=True, slots=True)
class Listing:
    """One level below a prefix: objects ``(name, size, modified)`` and directory names, each
    relative to the prefix, in S3's order; ``empty`` when no key at all is below it."""

    objects: list[tuple[str, int, datetime]]
    directories: list[str]
    empty: bool


class _Once(Generic[T]):
    """A call that forgets its callable once made. An idle worker thread keeps a reference to
    the last job it ran; without this, that job's closure (say, a part's body) would stay
    alive until the thread's next job."""

    def __init__(self, call: Callable[[], T]) -> None:
        self._call: Callable[[], T] | None = call

    def __call__(self) -> T:
        call, self._call = self._call, None
        assert call is not None, "called twice"
        return call()


class Bucket:
    """The requests the driver makes, each in a worker thread."""

    def __init__(
        self,
        client: S3Client,
        name: str,
        options: ObjectOptions | None = None,
        concurrency: int = 64,
    ) -> None:
        self.client = client
        self.name = name
        self.options = options or ObjectOptions()
        self._limiter = CapacityLimiter(concurrency)

    async def run(self, call: Callable[[], T]) -> T:
        """Run blocking S3 work in a worker thread. Cancelling the caller waits for the
        request to end, so the driver's view of an upload never misses a part it made."""
        try:
            return await run_sync(_Once(call), limiter=self._limiter)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc) from exc

    # -- objects -------------------------------------------------------------------------------

    async def head(self, key: str) -> Head | None:
        try:
            response = await self.run(lambda: self.client.head_object(Bucket=self.name, Key=key))
        except Missing:
            return None
        return Head(response["ContentLength"], response["ETag"], _utc(response["LastModified"]))

    async def put(
        self,
        key: str,
        body: bytes,
        metadata: dict[str, str] | None = None,
        scratch: bool = False,
    ) -> None:
        args = self.options.create_args(scratch)
        if metadata:
            args["Metadata"] = metadata
        await self.run(lambda: self.client.put_object(Bucket=self.name, Key=key, Body=body, **args))

    async def get(self, key: str) -> tuple[bytes, dict[str, str]]:
        """The whole object and its user metadata."""

        def get() -> tuple[bytes, dict[str, str]]:
            response = self.client.get_object(Bucket=self.name, Key=key)
            body = response["Body"]
            try:
                return body.read(), response.get("Metadata", {})
            finally:
                body.close()

        return await self.run(get)

    async def open_range(self, key: str, start: int, end: int, etag: str) -> StreamingBody:
        """A response streaming ``[start, end)`` of the object, if it still has ``etag``."""
        response = await self.run(
            lambda: self.client.get_object(
                Bucket=self.name, Key=key, Range=f"bytes={start}-{end - 1}", IfMatch=etag
            )
        )
        return response["Body"]

    async def read_range(self, key: str, start: int, end: int, etag: str) -> bytes:
        body = await self.open_range(key, start, end, etag)
        try:
            return await self.run(body.read)
        finally:
            body.close()

    async def copy(self, source: str, etag: str, destination: str) -> None:
        args = self.options.create_args()
        await self.run(
            lambda: self.client.copy_object(
                Bucket=self.name,
                Key=destination,
                CopySource={"Bucket": self.name, "Key": source},
                CopySourceIfMatch=etag,
                **args,
            )
        )

    async def delete(self, keys: Iterable[str]) -> None:
        """Delete keys, present or not."""
        batch = list(keys)
        for start in range(0, len(batch), _DELETE_BATCH):
            await self.run(
                functools.partial(self._delete_batch, batch[start : start + _DELETE_BATCH])
            )

    def _delete_batch(self, keys: list[str]) -> None:
        if not keys:
            return
        response = self.client.delete_objects(
            Bucket=self.name,
            Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
        )
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise S3Error(
                f"S3 DeleteObjects: {first.get('Key')}: {first.get('Code')} "
                f"{first.get('Message', '')}".rstrip(),
                first.get("Code", ""),
            )

    async def delete_below(self, prefix: str) -> int:
        """Delete every key starting with ``prefix``, a page at a time; return how many."""

        def delete_all() -> int:
            count = 0
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.name, Prefix=prefix
            )
            for page in pages:
                keys = [item["Key"] for item in page.get("Contents", [])]
                self._delete_batch(keys)
                count += len(keys)
            return count

        return await self.run(delete_all)

    # -- listing -------------------------------------------------------------------------------

    async def first_below(self, prefix: str) -> datetime | None:
        """When the first key below ``prefix`` was last modified; None when there is none."""
        response = await self.run(
            lambda: self.client.list_objects_v2(Bucket=self.name, Prefix=prefix, MaxKeys=1)
        )
        contents = response.get("Contents", [])
        return _utc(contents[0]["LastModified"]) if contents else None

    async def listing(self, prefix: str) -> Listing:
        def list_all() -> Listing:
            objects: list[tuple[str, int, datetime]] = []
            directories: list[str] = []
            empty = True
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.name, Prefix=prefix, Delimiter="/"
            )
            for page in pages:
                for item in page.get("Contents", []):
                    empty = False
                    name = item["Key"][len(prefix) :]
                    objects.append((name, item["Size"], _utc(item["LastModified"])))
                for common in page.get("CommonPrefixes", []):
                    empty = False
                    directories.append(common["Prefix"][len(prefix) :].rstrip("/"))
            return Listing(objects, directories, empty)

        return await self.run(list_all)

    # -- multipart uploads ---------------------------------------------------------------------

    async def uploads(self, prefix: str) -> list[tuple[str, str]]:
        """``(key, upload id)`` of every multipart upload in progress whose key starts with
        ``prefix``, in S3's order (by key, then oldest first)."""

        def list_all() -> list[tuple[str, str]]:
            found: list[tuple[str, str]] = []
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.name, Prefix=prefix
            )
            for page in pages:
                found.extend((item["Key"], item["UploadId"]) for item in page.get("Uploads", []))
            return found

        return await self.run(list_all)

    async def parts(self, key: str, upload: str) -> list[Part]:
        def list_all() -> list[Part]:
            found: list[Part] = []
            pages = self.client.get_paginator("list_parts").paginate(
                Bucket=self.name, Key=key, UploadId=upload
            )
            for page in pages:
                found.extend(
                    Part(item["PartNumber"], item["ETag"], item["Size"])
                    for item in page.get("Parts", [])
                )
            return sorted(found, key=lambda part: part.number)

        return await self.run(list_all)

    async def create_upload(self, key: str) -> str:
        args = self.options.create_args()
        response = await self.run(
            lambda: self.client.create_multipart_upload(Bucket=self.name, Key=key, **args)
        )
        return response["UploadId"]

    async def upload_part(self, key: str, upload: str, number: int, body: bytes) -> Part:
        response = await self.run(
            lambda: self.client.upload_part(
                Bucket=self.name, Key=key, UploadId=upload, PartNumber=number, Body=body
            )
        )
        return Part(number, response["ETag"], len(body))

    async def copy_part(
        self, source: str, etag: str, key: str, upload: str, number: int, start: int, end: int
    ) -> Part:
        """Make part ``number`` a server-side copy of ``[start, end)`` of ``source``."""
        response = await self.run(
            lambda: self.client.upload_part_copy(
                Bucket=self.name,
                Key=key,
                UploadId=upload,
                PartNumber=number,
                CopySource={"Bucket": self.name, "Key": source},
                CopySourceRange=f"bytes={start}-{end - 1}",
                CopySourceIfMatch=etag,
            )
        )
        return Part(number, response["CopyPartResult"]["ETag"], end - start)

    async def complete(self, key: str, upload: str, parts: list[Part]) -> None:
        completed: list[CompletedPartTypeDef] = [
            {"PartNumber": part.number, "ETag": part.etag} for part in parts
        ]
        await self.run(
            lambda: self.client.complete_multipart_upload(
                Bucket=self.name,
                Key=key,
                UploadId=upload,
                MultipartUpload={"Parts": completed},
            )
        )

    async def abort(self, key: str, upload: str) -> None:
        """Abort an upload; one already gone is fine."""
        with contextlib.suppress(Missing):
            await self.run(
                lambda: self.client.abort_multipart_upload(
                    Bucket=self.name, Key=key, UploadId=upload
                )
            )

    # -- direct access -------------------------------------------------------------------------

    async def presign(self, key: str, method: str, expires: int) -> str:
        operation = "head_object" if method == "HEAD" else "get_object"
        return await self.run(
            lambda: self.client.generate_presigned_url(
                operation, Params={"Bucket": self.name, "Key": key}, ExpiresIn=expires
            )
        )
