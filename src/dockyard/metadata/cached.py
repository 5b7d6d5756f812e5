"""A ``MetadataStore`` that answers hot reads from a shared ``Cache`` (Redis) and every write,
and every read the cache cannot answer, from the store it wraps.

Cached: blob descriptors (``get_blob``), a repository's blobs (``get_repository_blob``),
manifests by digest (``get_manifest``) and by tag (``get_tagged_manifest``, absent tags
included). Everything else passes through.

How entries stay correct across replicas
----------------------------------------
Nothing is deleted from the cache on a write, and no message has to reach other replicas in
time. Instead every entry carries a stamp, and is served only while its stamp is current:

- Each repository has a *token* in the cache, a random value. A write that commits a change
  to the repository's tags or links (a tag pushed or moved, a tag or manifest deleted, a blob
  unlinked) replaces the token, after the commit and before it returns.
- One *epoch*, also random, covers the whole cache; it is replaced to forget everything.
- A reader reads the epoch, the repository's token and the entry in one ``MGET``. It serves
  the entry only if the entry's stamp equals the epoch and token just read. On a miss it reads
  the database and stores the answer stamped with the epoch and token it read *before* the
  database. A missing epoch or token (never set, expired, evicted) is set to a new random
  value with ``SET NX``, and nothing is stored that time.

Tokens are random, never counters, so a token lost to eviction and set again can never
bring back entries stamped before (no ABA).

The races, for a reader R and a writer W that changes what R reads:

- R fills late: R reads the token T, then reads the old value from the database; W commits
  and replaces T by T'; R then stores the old value stamped T. Every later read sees T' and
  rejects it: a stale value can never be re-populated, for any window.
- R reads after W's replacement: R's database read starts after the replacement, which
  comes after W's commit, so R sees W's change.
- Between W's commit and its replacement of T, other replicas may still serve the old
  value; W has not yet answered its client, so no client can tell (a write takes effect when
  it returns).
- Two writers replace the token in either order: the final token is new either way.
- Only positive answers are cached for blobs and manifests by digest, so linking a blob or
  pushing a manifest without tags changes nothing cached and costs no cache write.

When the cache is unreachable
-----------------------------
Every cache call is bounded by the cache's own short timeout. A failure opens a circuit
breaker (``dockyard.cache.breaker``): reads go straight to the database and writes skip the
token replacement for a few seconds, then one call probes the cache again.

A write that could not replace its token (cache down, breaker open, timed out, or cancelled
right after the commit) leaves entries in the cache that may be stale once it is back. This
replica then owes a *flush*: before it uses the cache again it replaces the epoch, which
invalidates every entry of every replica at once. Until that happens (this replica's next
cache call after the breaker's cooldown), replicas that can reach the cache while this one
could not may serve those entries; repository entries also expire after ``ttl`` seconds
(default a minute), which bounds that window even if this replica dies first.

A cache whose primary changed (a Redis failover) may have lost writes it had acknowledged,
token replacements among them, while it kept older entries: it says so (``CacheLost``), and
this replica owes a flush as above. The Redis client asks which server is primary (the
Sentinels, or a Cluster node for each slot range) at most once a second while in use, so
every replica that wrote to the old primary learns of the change within about a second of
its next cache call.

Immutable facts (a blob's size by digest) are stamped with the epoch only and kept long.
Deleting blob rows (garbage collection) must therefore go through this wrapper and replace
the epoch, once it is part of the ``MetadataStore`` protocol.
"""

from __future__ import annotations

import enum
import json
import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from dockyard.cache.base import Cache, CacheError, CacheLost
from dockyard.cache.breaker import CircuitBreaker
from dockyard.cache.stats import CacheStats, NoStats
from dockyard.metadata.base import (
    BlobRecord,
    ManifestRecord,
    MetadataError,
    MetadataStore,
    OutboxEvent,
    UploadRecord,
)

__all__ = ["CachedMetadataStore"]

T = TypeVar("T")

# Part of every key: entries in another layout are never read.
_LAYOUT = "md1"
# Entry kinds by key prefix, for the hit and miss counts.
_KINDS = {"t": "tag", "m": "manifest", "rb": "repository_blob", "b": "blob"}


class _Miss(enum.Enum):
    MISS = 0


_MISS = _Miss.MISS


def _new_stamp() -> bytes:
    return secrets.token_hex(8).encode()


def _text(value: bytes) -> str:
    return value.decode("ascii", "replace")


# -- entries --------------------------------------------------------------------------------
#
# An entry is a JSON array (epoch, token, fields...), a NUL byte, then the manifest payload
# (JSON text never holds a raw NUL, so the first one ends the header).


def _pack(stamp: Sequence[str], fields: Sequence[Any], payload: bytes = b"") -> bytes:
    header = json.dumps([*stamp, *fields], separators=(",", ":")).encode()
    return header + b"\0" + payload


def _unpack(raw: bytes, stamp: Sequence[str]) -> tuple[list[Any], bytes] | _Miss:
    """The fields and payload if ``raw`` is well formed and carries ``stamp``."""
    header, _, payload = raw.partition(b"\0")
    try:
        items = json.loads(header)
    except ValueError:
        return _MISS
    n = len(stamp)
    if not isinstance(items, list) or len(items) <= n or items[:n] != list(stamp):
        return _MISS
    return items[n:], payload


def _manifest_fields(record: ManifestRecord) -> list[Any]:
    created = record.created_at.isoformat() if record.created_at is not None else None
    return [
        record.digest,
        record.media_type,
        record.size,
        record.artifact_type,
        record.subject,
        list(record.blobs),
        list(record.children),
        created,
    ]


def _check(ok: bool) -> None:
    # What the cache holds is not trusted to be well formed; a malformed entry is a miss.
    if not ok:
        raise TypeError("malformed cache entry")


def _optional_text(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _digests(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _blob_record(digest: str, fields: list[Any]) -> BlobRecord:
    (size,) = fields
    _check(type(size) is int)
    return BlobRecord(digest, size)


def _manifest_record(repository: str, fields: list[Any], payload: bytes) -> ManifestRecord:
    digest, media_type, size, artifact_type, subject, blobs, children, created = fields
    _check(isinstance(digest, str) and isinstance(media_type, str) and type(size) is int)
    _check(_optional_text(artifact_type) and _optional_text(subject) and _optional_text(created))
    _check(_digests(blobs) and _digests(children))
    return ManifestRecord(
        repository=repository,
        digest=digest,
        media_type=media_type,
        size=size,
        payload=payload,
        artifact_type=artifact_type,
        subject=subject,
        blobs=tuple(blobs),
        children=tuple(children),
        created_at=None if created is None else datetime.fromisoformat(created),
    )


class CachedMetadataStore:
    """``store`` with hot reads cached in ``cache``. Closing it closes ``store``; the cache
    belongs to whoever opened it (it may serve other purposes too).

    ``prefix`` starts every key (replicas of one registry must agree on it); ``ttl`` bounds
    how long a repository's entries live, ``immutable_ttl`` a blob descriptor's; manifests
    whose payload exceeds ``max_payload`` bytes are not cached.
    """

    def __init__(
        self,
        store: MetadataStore,
        cache: Cache,
        *,
        prefix: str = "dockyard",
        ttl: float = 60.0,
        immutable_ttl: float = 24 * 3600.0,
        max_payload: int = 1 << 20,
        breaker: CircuitBreaker | None = None,
        stats: CacheStats | None = None,
    ) -> None:
        self._store = store
        self._cache = cache
        self._stats = stats or NoStats()
        self._prefix = f"{prefix}:{_LAYOUT}:"
        self._epoch_key = self._prefix + "epoch"
        self._ttl = ttl
        self._immutable_ttl = immutable_ttl
        # A token outlives the entries stamped with it; expiring, it only costs a miss.
        self._token_ttl = max(ttl, immutable_ttl)
        self._max_payload = max_payload
        self._breaker = breaker or CircuitBreaker(f"metadata cache ({cache!r})")
        # Committed changes that may not have reached the cache (see the module docstring);
        # a count, so that a flush only settles the failures that came before it.
        self._unflushed = 0

    @property
    def store(self) -> MetadataStore:
        return self._store

    @property
    def cache(self) -> Cache:
        return self._cache

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    @property
    def flush_owed(self) -> bool:
        return self._unflushed > 0

    async def close(self) -> None:
        await self._store.close()

    async def invalidate(self, repository: str) -> None:
        """Forget what is cached for the repository: it was changed behind this store (by
        the garbage collector)."""
        await self._changed(repository)

    # -- keys ------------------------------------------------------------------------------
    # Repository names, tags and digests hold no ``:`` before a digest's own, so these
    # cannot collide.

    def _token_key(self, repository: str) -> str:
        return f"{self._prefix}r:{repository}"

    def _tag_key(self, repository: str, tag: str) -> str:
        return f"{self._prefix}t:{repository}:{tag}"

    def _manifest_key(self, repository: str, digest: str) -> str:
        return f"{self._prefix}m:{repository}:{digest}"

    def _repository_blob_key(self, repository: str, digest: str) -> str:
        return f"{self._prefix}rb:{repository}:{digest}"

    def _blob_key(self, digest: str) -> str:
        return f"{self._prefix}b:{digest}"

    # -- talking to the cache --------------------------------------------------------------

    async def _attempt(self, operation: Callable[[], Awaitable[T]]) -> T | _Miss:
        """``operation``'s result, or ``MISS`` when the breaker is open or the call fails.
        An owed flush is paid first: no entry is read or written before it."""
        if not self._breaker.allow():
            return _MISS
        try:
            owed = self._unflushed
            if owed:
                await self._cache.set(self._epoch_key, _new_stamp())
                self._unflushed -= owed
            result = await operation()
        except CacheLost:
            # Working, but a failover may have undone token replacements: flush first.
            self._unflushed += 1
            return _MISS
        except CacheError as error:
            self._breaker.failed(error)
            return _MISS
        self._breaker.succeeded()
        return result

    async def _changed(self, repository: str) -> None:
        """Replace the repository's token after a committed change, or owe a flush."""
        key = self._token_key(repository)

        async def replace() -> bool:
            await self._cache.set(key, _new_stamp(), self._token_ttl)
            return True

        try:
            done = await self._attempt(replace)
        except BaseException:
            self._unflushed += 1
            raise
        if done is _MISS:
            self._unflushed += 1

    async def _write(
        self, repository: str, operation: Awaitable[T], changed: Callable[[T], bool]
    ) -> T:
        try:
            result = await operation
        except MetadataError:
            raise  # refused inside the transaction: nothing was committed
        except BaseException:
            # It may have committed before failing (a lost connection, a cancellation).
            await self._changed(repository)
            raise
        if changed(result):
            await self._changed(repository)
        return result

    async def _read(
        self,
        stamp_keys: Sequence[str],
        key: str,
        ttl: float,
        load: Callable[[], Awaitable[T]],
        decode: Callable[[list[Any], bytes], T],
        encode: Callable[[T], tuple[list[Any], bytes] | None],
    ) -> T:
        """The value at ``key`` if its stamp (the values at ``stamp_keys``) is current, else
        ``load()``'s, stored with the stamp read before it. ``encode`` returns None for what
        is not to be stored."""
        kind = _KINDS.get(key[len(self._prefix) :].partition(":")[0], "other")
        values = await self._attempt(lambda: self._cache.get_many([*stamp_keys, key]))
        if values is _MISS:
            self._stats.lookup(kind, False)
            return await load()
        *stamp_values, raw = values
        stamp = [None if value is None else _text(value) for value in stamp_values]
        current = [s for s in stamp if s is not None]
        if raw is not None and len(current) == len(stamp):
            unpacked = _unpack(raw, current)
            if unpacked is not _MISS:
                try:
                    decoded = decode(*unpacked)
                except (TypeError, ValueError, IndexError):
                    pass  # malformed: read through and overwrite it
                else:
                    self._stats.lookup(kind, True)
                    return decoded
        self._stats.lookup(kind, False)
        result = await load()
        if len(current) < len(stamp):
            missing = [k for k, s in zip(stamp_keys, stamp, strict=True) if s is None]
            await self._attempt(lambda: self._initialise(missing))
            return result
        entry = encode(result)
        if entry is not None:
            value = _pack(current, *entry)
            await self._attempt(lambda: self._cache.set(key, value, ttl))
        return result

    async def _initialise(self, stamp_keys: Sequence[str]) -> None:
        for stamp_key in stamp_keys:
            ttl = None if stamp_key == self._epoch_key else self._token_ttl
            await self._cache.add(stamp_key, _new_stamp(), ttl)

    def _repository_stamp(self, repository: str) -> list[str]:
        return [self._epoch_key, self._token_key(repository)]

    # -- manifest entries ------------------------------------------------------------------

    def _encode_manifest(
        self, record: ManifestRecord | None, *, negative: bool
    ) -> tuple[list[Any], bytes] | None:
        if record is None:
            return ([None], b"") if negative else None
        if len(record.payload) > self._max_payload:
            return None
        return _manifest_fields(record), record.payload

    @staticmethod
    def _decode_manifest(
        repository: str, fields: list[Any], payload: bytes
    ) -> ManifestRecord | None:
        if fields == [None]:
            return None
        return _manifest_record(repository, fields, payload)

    # -- repositories ----------------------------------------------------------------------
    async def repository_exists(self, repository: str) -> bool:
        return await self._store.repository_exists(repository)

    async def list_repositories(self, limit: int, last: str | None = None) -> list[str]:
        return await self._store.list_repositories(limit, last)

    # -- blobs -----------------------------------------------------------------------------
    async def get_blob(self, digest: str) -> BlobRecord | None:
        return await self._read(
            [self._epoch_key],
            self._blob_key(digest),
            self._immutable_ttl,
            lambda: self._store.get_blob(digest),
            lambda fields, _: _blob_record(digest, fields),
            lambda blob: None if blob is None else ([blob.size], b""),
        )

    async def get_repository_blob(self, repository: str, digest: str) -> BlobRecord | None:
        return await self._read(
            self._repository_stamp(repository),
            self._repository_blob_key(repository, digest),
            self._ttl,
            lambda: self._store.get_repository_blob(repository, digest),
            lambda fields, _: _blob_record(digest, fields),
            lambda blob: None if blob is None else ([blob.size], b""),
        )

    async def link_blob(
        self, repository: str, digest: str, size: int, events: Sequence[OutboxEvent] = ()
    ) -> None:
        # Only adds a link: no cached answer changes (absent links are not cached).
        await self._store.link_blob(repository, digest, size, events)

    async def unlink_blob(
        self, repository: str, digest: str, events: Sequence[OutboxEvent] = ()
    ) -> bool:
        return await self._write(
            repository, self._store.unlink_blob(repository, digest, events), lambda done: done
        )

    # -- manifests and tags ----------------------------------------------------------------
    async def put_manifest(
        self,
        manifest: ManifestRecord,
        tags: Sequence[str] = (),
        events: Sequence[OutboxEvent] = (),
    ) -> None:
        # Without tags it only adds a manifest, and absent manifests are not cached.
        await self._write(
            manifest.repository,
            self._store.put_manifest(manifest, tags, events),
            lambda _: bool(tags),
        )

    async def get_manifest(self, repository: str, digest: str) -> ManifestRecord | None:
        return await self._read(
            self._repository_stamp(repository),
            self._manifest_key(repository, digest),
            self._ttl,
            lambda: self._store.get_manifest(repository, digest),
            lambda fields, payload: self._decode_manifest(repository, fields, payload),
            lambda record: self._encode_manifest(record, negative=False),
        )

    async def get_tagged_manifest(self, repository: str, tag: str) -> ManifestRecord | None:
        return await self._read(
            self._repository_stamp(repository),
            self._tag_key(repository, tag),
            self._ttl,
            lambda: self._store.get_tagged_manifest(repository, tag),
            lambda fields, payload: self._decode_manifest(repository, fields, payload),
            lambda record: self._encode_manifest(record, negative=True),
        )

    async def delete_manifest(
        self, repository: str, digest: str, events: Sequence[OutboxEvent] = ()
    ) -> bool:
        return await self._write(
            repository, self._store.delete_manifest(repository, digest, events), lambda done: done
        )

    async def delete_tag(
        self, repository: str, tag: str, events: Sequence[OutboxEvent] = ()
    ) -> bool:
        return await self._write(
            repository, self._store.delete_tag(repository, tag, events), lambda done: done
        )

    async def list_tags(self, repository: str, limit: int, last: str | None = None) -> list[str]:
        return await self._store.list_tags(repository, limit, last)

    async def list_referrers(
        self, repository: str, subject: str, artifact_type: str | None = None
    ) -> list[ManifestRecord]:
        return await self._store.list_referrers(repository, subject, artifact_type)

    # -- upload sessions -------------------------------------------------------------------
    async def create_upload(self, upload: UploadRecord) -> None:
        await self._store.create_upload(upload)

    async def get_upload(self, upload_id: str) -> UploadRecord | None:
        return await self._store.get_upload(upload_id)

    async def acquire_upload(self, upload_id: str, lease_seconds: float) -> UploadRecord | None:
        return await self._store.acquire_upload(upload_id, lease_seconds)

    async def renew_upload(
        self, upload_id: str, lease: datetime, lease_seconds: float
    ) -> datetime | None:
        return await self._store.renew_upload(upload_id, lease, lease_seconds)

    async def release_upload(
        self,
        upload_id: str,
        offset: int | None = None,
        hash_state: bytes | None = None,
        lease: datetime | None = None,
    ) -> bool:
        return await self._store.release_upload(upload_id, offset, hash_state, lease)

    async def complete_upload(
        self,
        upload_id: str,
        repository: str,
        digest: str,
        size: int,
        events: Sequence[OutboxEvent] = (),
    ) -> None:
        # Links the blob, as ``link_blob`` does: no cached answer changes.
        await self._store.complete_upload(upload_id, repository, digest, size, events)

    async def delete_upload(self, upload_id: str) -> bool:
        return await self._store.delete_upload(upload_id)

    async def list_uploads_before(self, cutoff: datetime, limit: int) -> list[UploadRecord]:
        return await self._store.list_uploads_before(cutoff, limit)
