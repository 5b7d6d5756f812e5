"""The contract every ``MetadataStore`` keeps.

A store's test module plugs it in with a subclass that provides a ``store`` fixture giving a
fresh, empty store for each test::

    class TestMyStore(MetadataStoreContract):
        @pytest.fixture
        async def store(self, tmp_path: Path) -> AsyncIterator[MetadataStore]:
            store = await open_my_store(...)
            yield store
            await store.close()
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dockyard.events.outbox import Outbox
from dockyard.metadata.base import (
    BlobRecord,
    ManifestRecord,
    MetadataStore,
    MissingReferences,
    OutboxEvent,
    UploadBusy,
    UploadRecord,
)

IMAGE = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONCURRENCY = 20


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob(name: str) -> str:
    """A blob digest, named for readability."""
    return digest_of(name.encode())


def manifest(
    repository: str,
    name: str,
    *,
    blobs: Sequence[str] = (),
    children: Sequence[str] = (),
    subject: str | None = None,
    artifact_type: str | None = None,
    media_type: str | None = None,
) -> ManifestRecord:
    """A manifest whose payload (and so digest) is unique to ``name``."""
    payload = f'{{"name": "{name}"}}'.encode()
    return ManifestRecord(
        repository=repository,
        digest=digest_of(payload),
        media_type=media_type or (INDEX if children else IMAGE),
        size=len(payload),
        payload=payload,
        artifact_type=artifact_type,
        subject=subject,
        blobs=tuple(blobs),
        children=tuple(children),
    )


def upload(upload_id: str, *, repository: str = "repo", age: float = 0.0) -> UploadRecord:
    """A fresh session, last updated ``age`` seconds ago."""
    when = datetime.now(UTC) - timedelta(seconds=age)
    return UploadRecord(
        id=upload_id,
        repository=repository,
        offset=0,
        hash_state=b"",
        created_at=when,
        updated_at=when,
    )


async def linked_image(
    store: MetadataStore, repository: str, name: str, tags: Sequence[str] = ()
) -> ManifestRecord:
    """Push an image with a config and one layer, blobs first, as a client would."""
    config, layer = blob(f"{name}-config"), blob(f"{name}-layer")
    await store.link_blob(repository, config, 10)
    await store.link_blob(repository, layer, 20)
    record = manifest(repository, name, blobs=sorted([config, layer]))
    await store.put_manifest(record, tags)
    return record


async def walk(page: int, lister: Callable[..., Awaitable[list[str]]], *args: str) -> list[str]:
    """Every name, fetched ``page`` at a time by following ``last``."""
    names: list[str] = []
    last: str | None = None
    while True:
        chunk = await lister(*args, page, last)
        assert len(chunk) <= page
        names += chunk
        if len(chunk) < page:
            return names
        last = chunk[-1]


def outbox_of(store: MetadataStore) -> Outbox:
    """The outbox in the store's database (through wrappers such as the cached store)."""
    inner: Any = store
    while not hasattr(inner, "database"):
        inner = inner._store
    return Outbox(inner.database)


def event(number: int, *consumers: str) -> OutboxEvent:
    return OutboxEvent(f'{{"n":{number}}}', consumers or ("a", "b"))


async def bodies(outbox: Outbox, consumer: str) -> list[str]:
    return [pending.body for pending in await outbox.pending(consumer, 100)]


class MetadataStoreContract:
    """Tests any ``MetadataStore`` through its public surface only."""

    @pytest.fixture
    async def store(self) -> MetadataStore:
        raise NotImplementedError("a store's test class provides the `store` fixture")

    # -- shape ---------------------------------------------------------------------------------

    def test_satisfies_the_protocol(self, store: MetadataStore) -> None:
        assert isinstance(store, MetadataStore)

    async def test_empty_store(self, store: MetadataStore) -> None:
        assert not await store.repository_exists("repo")
        assert await store.list_repositories(10) == []
        assert await store.get_blob(blob("a")) is None
        assert await store.get_repository_blob("repo", blob("a")) is None
        assert await store.get_manifest("repo", blob("m")) is None
        assert await store.get_tagged_manifest("repo", "latest") is None
        assert await store.list_tags("repo", 10) == []
        assert await store.list_referrers("repo", blob("m")) == []
        assert await store.get_upload("u") is None
        assert await store.acquire_upload("u", 30) is None
        assert await store.list_uploads_before(datetime.now(UTC), 10) == []

    async def test_deleting_what_is_not_there(self, store: MetadataStore) -> None:
        assert await store.unlink_blob("repo", blob("a")) is False
        assert await store.delete_manifest("repo", blob("m")) is False
        assert await store.delete_tag("repo", "latest") is False
        assert await store.delete_upload("u") is False
        await store.link_blob("repo", blob("a"), 1)
        assert await store.unlink_blob("repo", blob("b")) is False
        assert await store.delete_manifest("repo", blob("m")) is False
        assert await store.delete_tag("repo", "latest") is False

    # -- blobs ---------------------------------------------------------------------------------

    async def test_link_blob_records_it_and_creates_the_repository(
        self, store: MetadataStore
    ) -> None:
        await store.link_blob("library/ubuntu", blob("a"), 1 << 40)
        assert await store.repository_exists("library/ubuntu")
        assert await store.list_repositories(10) == ["library/ubuntu"]
        expected = BlobRecord(blob("a"), 1 << 40)
        assert await store.get_blob(blob("a")) == expected
        assert await store.get_repository_blob("library/ubuntu", blob("a")) == expected

    async def test_link_blob_is_idempotent(self, store: MetadataStore) -> None:
        for _ in range(3):
            await store.link_blob("repo", blob("a"), 5)
        assert await store.get_repository_blob("repo", blob("a")) == BlobRecord(blob("a"), 5)
        assert await store.unlink_blob("repo", blob("a")) is True
        assert await store.get_repository_blob("repo", blob("a")) is None

    async def test_blob_linked_in_one_repository_is_invisible_from_another(
        self, store: MetadataStore
    ) -> None:
        await store.link_blob("one", blob("a"), 5)
        await store.link_blob("two", blob("b"), 6)
        assert await store.get_repository_blob("two", blob("a")) is None
        assert await store.get_repository_blob("one", blob("b")) is None
        assert await store.get_repository_blob("nowhere", blob("a")) is None
        # The registry as a whole still has it (a mount can find it)...
        assert await store.get_blob(blob("a")) == BlobRecord(blob("a"), 5)
        # ...and once mounted, both repositories serve it.
        await store.link_blob("two", blob("a"), 5)
        assert await store.get_repository_blob("two", blob("a")) == BlobRecord(blob("a"), 5)
        assert await store.get_repository_blob("one", blob("a")) == BlobRecord(blob("a"), 5)

    async def test_unlink_blob_touches_only_that_repository(self, store: MetadataStore) -> None:
        await store.link_blob("one", blob("a"), 5)
        await store.link_blob("two", blob("a"), 5)
        assert await store.unlink_blob("one", blob("a")) is True
        assert await store.unlink_blob("one", blob("a")) is False
        assert await store.get_repository_blob("one", blob("a")) is None
        assert await store.get_repository_blob("two", blob("a")) == BlobRecord(blob("a"), 5)
        assert await store.get_blob(blob("a")) == BlobRecord(blob("a"), 5)

    async def test_concurrent_link_blob_of_one_digest(self, store: MetadataStore) -> None:
        repositories = [f"repo{n % 4}" for n in range(CONCURRENCY)]
        await asyncio.gather(*(store.link_blob(r, blob("a"), 7) for r in repositories))
        assert await store.list_repositories(10) == sorted(set(repositories))
        for repository in set(repositories):
            assert await store.get_repository_blob(repository, blob("a")) == BlobRecord(
                blob("a"), 7
            )

    # -- manifests -----------------------------------------------------------------------------

    async def test_put_and_get_manifest(self, store: MetadataStore) -> None:
        record = await linked_image(store, "library/ubuntu", "m")
        got = await store.get_manifest("library/ubuntu", record.digest)
        assert got == record
        assert got is not None
        assert got.payload == record.payload
        assert got.created_at is not None
        assert got.created_at.tzinfo is not None
        assert got.created_at.utcoffset() == timedelta(0)
        assert abs(got.created_at - datetime.now(UTC)) < timedelta(minutes=1)
        assert await store.get_manifest("library/ubuntu", blob("other")) is None
        assert await store.get_manifest("library/debian", record.digest) is None

    async def test_every_field_round_trips(self, store: MetadataStore) -> None:
        payload = bytes(range(256)) * 4096  # 1 MiB, every byte value
        record = ManifestRecord(
            repository="repo",
            digest=digest_of(payload),
            media_type="application/vnd.example+json",
            size=len(payload),
            payload=payload,
            artifact_type="application/vnd.example.sbom",
            subject=blob("subject"),
        )
        await store.put_manifest(record)
        assert await store.get_manifest("repo", record.digest) == record

    async def test_references_come_back_as_a_sorted_set(self, store: MetadataStore) -> None:
        layers = [blob("z"), blob("a"), blob("z"), blob("m")]
        for layer in set(layers):
            await store.link_blob("repo", layer, 1)
        await store.put_manifest(manifest("repo", "m", blobs=layers))
        got = await store.get_manifest("repo", manifest("repo", "m").digest)
        assert got is not None
        assert got.blobs == tuple(sorted(set(layers)))

    async def test_put_manifest_creates_the_repository(self, store: MetadataStore) -> None:
        await store.put_manifest(manifest("fresh/repo", "m"), ["latest"])
        assert await store.repository_exists("fresh/repo")
        assert await store.list_tags("fresh/repo", 10) == ["latest"]

    async def test_put_manifest_is_idempotent_and_still_tags(self, store: MetadataStore) -> None:
        record = await linked_image(store, "repo", "m", ["v1"])
        await store.put_manifest(record, ["v1"])
        await store.put_manifest(record)
        await store.put_manifest(record, ["v2", "latest"])
        assert await store.get_manifest("repo", record.digest) == record
        assert await store.list_tags("repo", 10) == ["latest", "v1", "v2"]
        for tag in ("latest", "v1", "v2"):
            assert await store.get_tagged_manifest("repo", tag) == record

    async def test_duplicate_tags_in_one_put(self, store: MetadataStore) -> None:
        record = manifest("repo", "m")
        await store.put_manifest(record, ["a", "b", "a"])
        assert await store.list_tags("repo", 10) == ["a", "b"]

    async def test_missing_blobs(self, store: MetadataStore) -> None:
        await store.link_blob("repo", blob("present"), 1)
        await store.link_blob("elsewhere", blob("other-repo"), 1)
        record = manifest("repo", "m", blobs=[blob("present"), blob("absent"), blob("other-repo")])
        with pytest.raises(MissingReferences) as caught:
            await store.put_manifest(record, ["latest"])
        assert sorted(caught.value.blobs) == sorted([blob("absent"), blob("other-repo")])
        assert caught.value.manifests == []
        assert await store.get_manifest("repo", record.digest) is None
        assert await store.get_tagged_manifest("repo", "latest") is None
        assert await store.list_tags("repo", 10) == []

    async def test_missing_children(self, store: MetadataStore) -> None:
        present = manifest("repo", "child")
        elsewhere = manifest("elsewhere", "other-child")
        await store.put_manifest(present)
        await store.put_manifest(elsewhere)
        index = manifest("repo", "index", children=[present.digest, elsewhere.digest])
        with pytest.raises(MissingReferences) as caught:
            await store.put_manifest(index, ["latest"])
        assert caught.value.manifests == [elsewhere.digest]
        assert caught.value.blobs == []
        assert await store.get_manifest("repo", index.digest) is None
        assert await store.list_tags("repo", 10) == []

    async def test_a_blob_is_not_a_child_manifest(self, store: MetadataStore) -> None:
        await store.link_blob("repo", blob("a"), 1)
        with pytest.raises(MissingReferences) as caught:
            await store.put_manifest(manifest("repo", "index", children=[blob("a")]))
        assert caught.value.manifests == [blob("a")]

    async def test_failed_put_leaves_no_trace(self, store: MetadataStore) -> None:
        with pytest.raises(MissingReferences) as caught:
            await store.put_manifest(
                manifest("new", "m", blobs=[blob("b")], children=[blob("c")]), ["t"]
            )
        assert caught.value.blobs == [blob("b")]
        assert caught.value.manifests == [blob("c")]
        assert not await store.repository_exists("new")
        assert await store.list_repositories(10) == []

    async def test_index_with_children(self, store: MetadataStore) -> None:
        amd64 = await linked_image(store, "repo", "amd64")
        arm64 = await linked_image(store, "repo", "arm64")
        index = manifest("repo", "index", children=sorted([amd64.digest, arm64.digest]))
        await store.put_manifest(index, ["latest"])
        assert await store.get_tagged_manifest("repo", "latest") == index

    async def test_same_digest_in_two_repositories(self, store: MetadataStore) -> None:
        one = manifest("one", "m")
        two = manifest("two", "m")
        assert one.digest == two.digest
        await store.put_manifest(one, ["a"])
        await store.put_manifest(two, ["b"])
        assert await store.delete_manifest("one", one.digest) is True
        assert await store.get_manifest("one", one.digest) is None
        assert await store.get_manifest("two", two.digest) == two
        assert await store.get_tagged_manifest("two", "b") == two

    async def test_concurrent_put_of_one_manifest(self, store: MetadataStore) -> None:
        config, layer = blob("config"), blob("layer")
        await store.link_blob("repo", config, 1)
        await store.link_blob("repo", layer, 1)
        record = manifest("repo", "m", blobs=sorted([config, layer]))
        await asyncio.gather(
            *(store.put_manifest(record, ["latest", f"t{n}"]) for n in range(CONCURRENCY))
        )
        assert await store.get_manifest("repo", record.digest) == record
        assert await store.get_tagged_manifest("repo", "latest") == record
        assert len(await store.list_tags("repo", 100)) == CONCURRENCY + 1

    async def test_concurrent_first_push_into_new_repositories(self, store: MetadataStore) -> None:
        names = [f"repo{n % 3}" for n in range(CONCURRENCY)]
        await asyncio.gather(*(store.put_manifest(manifest(r, "m"), ["latest"]) for r in names))
        assert await store.list_repositories(10) == ["repo0", "repo1", "repo2"]

    # -- tags ----------------------------------------------------------------------------------

    async def test_tag_moves(self, store: MetadataStore) -> None:
        first = await linked_image(store, "repo", "first", ["latest", "v1"])
        second = await linked_image(store, "repo", "second", ["latest"])
        assert await store.get_tagged_manifest("repo", "latest") == second
        assert await store.get_tagged_manifest("repo", "v1") == first
        assert await store.get_manifest("repo", first.digest) == first
        assert await store.list_tags("repo", 10) == ["latest", "v1"]

    async def test_concurrent_tag_moves_settle_on_one(self, store: MetadataStore) -> None:
        records = [manifest("repo", f"m{n}") for n in range(CONCURRENCY)]
        await asyncio.gather(*(store.put_manifest(r, ["latest", "stable"]) for r in records))
        latest = await store.get_tagged_manifest("repo", "latest")
        assert latest in records
        assert await store.list_tags("repo", 10) == ["latest", "stable"]

    async def test_tags_point_only_within_the_repository(self, store: MetadataStore) -> None:
        record = manifest("one", "m")
        await store.put_manifest(record, ["latest"])
        await store.put_manifest(manifest("two", "other"))
        assert await store.get_tagged_manifest("two", "latest") is None
        assert await store.list_tags("two", 10) == []
        assert await store.delete_tag("two", "latest") is False
        assert await store.get_tagged_manifest("one", "latest") == record

    async def test_delete_manifest_removes_its_tags(self, store: MetadataStore) -> None:
        doomed = await linked_image(store, "repo", "doomed", ["a", "b"])
        kept = await linked_image(store, "repo", "kept", ["c"])
        assert await store.delete_manifest("repo", doomed.digest) is True
        assert await store.get_manifest("repo", doomed.digest) is None
        assert await store.get_tagged_manifest("repo", "a") is None
        assert await store.list_tags("repo", 10) == ["c"]
        assert await store.get_tagged_manifest("repo", "c") == kept
        assert await store.delete_manifest("repo", doomed.digest) is False
        # The digest may be pushed again afterwards.
        await store.put_manifest(doomed, ["a"])
        assert await store.get_tagged_manifest("repo", "a") == doomed

    async def test_delete_tag_removes_only_the_tag(self, store: MetadataStore) -> None:
        record = await linked_image(store, "repo", "m", ["a", "b"])
        assert await store.delete_tag("repo", "a") is True
        assert await store.delete_tag("repo", "a") is False
        assert await store.get_tagged_manifest("repo", "a") is None
        assert await store.get_tagged_manifest("repo", "b") == record
        assert await store.get_manifest("repo", record.digest) == record
        assert await store.list_tags("repo", 10) == ["b"]

    # -- pagination ----------------------------------------------------------------------------

    TAGS = ["latest", "v1.0", "V1", "1", "a-b", "a.b", "a_b", "aa", "a", "Z", "_x"]
    REPOSITORIES = ["a", "a/b", "a-b", "a.b", "a/b/c", "a_b", "ab", "b", "a/a", "0", "z/z"]

    async def test_tags_sort_lexically(self, store: MetadataStore) -> None:
        await store.put_manifest(manifest("repo", "m"), self.TAGS)
        assert await store.list_tags("repo", 100) == sorted(self.TAGS)

    @pytest.mark.parametrize("page", [1, 2, 3, 100])
    async def test_tag_pages(self, store: MetadataStore, page: int) -> None:
        await store.put_manifest(manifest("repo", "m"), self.TAGS)
        assert await walk(page, store.list_tags, "repo") == sorted(self.TAGS)

    async def test_tag_page_edges(self, store: MetadataStore) -> None:
        await store.put_manifest(manifest("repo", "m"), ["a", "c", "e"])
        await store.put_manifest(manifest("other", "m"), ["b", "d"])
        assert await store.list_tags("repo", 1) == ["a"]
        assert await store.list_tags("repo", 2, "a") == ["c", "e"]
        assert await store.list_tags("repo", 10, "b") == ["c", "e"]
        assert await store.list_tags("repo", 10, "") == ["a", "c", "e"]
        assert await store.list_tags("repo", 10, "e") == []
        assert await store.list_tags("repo", 10, "zzz") == []
        assert await store.list_tags("repo", 0) == []

    async def test_repositories_sort_lexically(self, store: MetadataStore) -> None:
        for name in self.REPOSITORIES:
            await store.link_blob(name, blob("a"), 1)
        assert await store.list_repositories(100) == sorted(self.REPOSITORIES)

    @pytest.mark.parametrize("page", [1, 2, 3, 100])
    async def test_repository_pages(self, store: MetadataStore, page: int) -> None:
        for name in self.REPOSITORIES:
            await store.link_blob(name, blob("a"), 1)
        assert await walk(page, store.list_repositories) == sorted(self.REPOSITORIES)

    async def test_repository_page_edges(self, store: MetadataStore) -> None:
        for name in ["a", "a/b", "b"]:
            await store.link_blob(name, blob("a"), 1)
        assert await store.list_repositories(1) == ["a"]
        assert await store.list_repositories(1, "a") == ["a/b"]
        assert await store.list_repositories(10, "a/a") == ["a/b", "b"]
        assert await store.list_repositories(10, "b") == []
        assert await store.list_repositories(10, "c/d") == []
        assert await store.list_repositories(0) == []

    # -- referrers -----------------------------------------------------------------------------

    async def test_referrers(self, store: MetadataStore) -> None:
        subject = await linked_image(store, "repo", "subject")
        sbom = manifest("repo", "sbom", subject=subject.digest, artifact_type="application/sbom")
        sig = manifest("repo", "sig", subject=subject.digest, artifact_type="application/sig")
        plain = manifest("repo", "plain", subject=subject.digest)
        unrelated = manifest("repo", "unrelated", artifact_type="application/sbom")
        elsewhere = manifest("other", "sbom", subject=subject.digest, artifact_type="a/sbom")
        for record in (sbom, sig, plain, unrelated, elsewhere):
            await store.put_manifest(record)
        everything = sorted([sbom, sig, plain], key=lambda r: r.digest)
        assert await store.list_referrers("repo", subject.digest) == everything
        assert await store.list_referrers("repo", subject.digest, "application/sbom") == [sbom]
        assert await store.list_referrers("repo", subject.digest, "application/none") == []
        assert await store.list_referrers("repo", sbom.digest) == []
        assert await store.list_referrers("other", subject.digest) == [elsewhere]

    async def test_referrers_before_their_subject(self, store: MetadataStore) -> None:
        # The spec lets a referrer be pushed before the manifest it refers to.
        signature = manifest("repo", "sig", subject=blob("not-yet-pushed"))
        await store.put_manifest(signature)
        assert await store.list_referrers("repo", blob("not-yet-pushed")) == [signature]

    async def test_deleted_referrer_is_gone(self, store: MetadataStore) -> None:
        signature = manifest("repo", "sig", subject=blob("s"))
        await store.put_manifest(signature)
        await store.delete_manifest("repo", signature.digest)
        assert await store.list_referrers("repo", blob("s")) == []

    # -- upload sessions -----------------------------------------------------------------------

    async def test_upload_round_trip(self, store: MetadataStore) -> None:
        record = upload("u1", repository="library/ubuntu")
        await store.create_upload(record)
        assert await store.get_upload("u1") == record
        assert await store.get_upload("u2") is None

    async def test_acquire_release_records_progress(self, store: MetadataStore) -> None:
        await store.create_upload(upload("u", age=60))
        held = await store.acquire_upload("u", 30)
        assert held is not None
        assert (held.id, held.offset, held.hash_state) == ("u", 0, b"")
        await store.release_upload("u", offset=1234, hash_state=b"\x00state\xff")
        got = await store.get_upload("u")
        assert got is not None
        assert (got.offset, got.hash_state) == (1234, b"\x00state\xff")
        assert got.updated_at > held.created_at
        # Releasing without progress keeps what was recorded.
        assert await store.acquire_upload("u", 30) is not None
        await store.release_upload("u")
        again = await store.get_upload("u")
        assert again is not None
        assert (again.offset, again.hash_state) == (1234, b"\x00state\xff")

    async def test_lease_is_exclusive(self, store: MetadataStore) -> None:
        await store.create_upload(upload("u"))
        assert await store.acquire_upload("u", 30) is not None
        with pytest.raises(UploadBusy):
            await store.acquire_upload("u", 30)
        await store.release_upload("u")
        assert await store.acquire_upload("u", 30) is not None

    async def test_one_of_many_concurrent_acquirers_wins(self, store: MetadataStore) -> None:
        await store.create_upload(upload("u"))
        results = await asyncio.gather(
            *(store.acquire_upload("u", 30) for _ in range(CONCURRENCY)), return_exceptions=True
        )
        winners = [r for r in results if isinstance(r, UploadRecord)]
        losers = [r for r in results if isinstance(r, UploadBusy)]
        assert len(winners) == 1
        assert len(losers) == CONCURRENCY - 1

    async def test_lease_expires(self, store: MetadataStore) -> None:
        await store.create_upload(upload("u"))
        assert await store.acquire_upload("u", 0.3) is not None
        with pytest.raises(UploadBusy):
            await store.acquire_upload("u", 0.3)
        await asyncio.sleep(0.4)
        assert await store.acquire_upload("u", 30) is not None

    async def test_renew_extends_only_the_holders_lease(self, store: MetadataStore) -> None:
        await store.create_upload(upload("u"))
        held = await store.acquire_upload("u", 0.3)
        assert held is not None
        assert held.lease is not None
        renewed = await store.renew_upload("u", held.lease, 0.6)
        assert renewed is not None
        assert renewed > held.lease
        await asyncio.sleep(0.4)
        # Past the first expiry but within the renewed one: still held.
        with pytest.raises(UploadBusy):
            await store.acquire_upload("u", 30)
        # The old token no longer fences anything.
        assert await store.renew_upload("u", held.lease, 30) is None
        assert await store.renew_upload("missing", renewed, 30) is None

    async def test_a_lost_lease_cannot_release_or_record_progress(
        self, store: MetadataStore
    ) -> None:
        await store.create_upload(upload("u"))
        first = await store.acquire_upload("u", 0.2)
        assert first is not None
        assert first.lease is not None
        await asyncio.sleep(0.3)
        second = await store.acquire_upload("u", 30)
        assert second is not None
        assert second.lease is not None
        # The first holder wakes up late: its release is refused and changes nothing.
        assert not await store.release_upload("u", offset=999, hash_state=b"x", lease=first.lease)
        current = await store.get_upload("u")
        assert current is not None
        assert current.offset == 0
        with pytest.raises(UploadBusy):
            await store.acquire_upload("u", 30)
        assert await store.release_upload("u", offset=5, hash_state=b"s", lease=second.lease)
        released = await store.get_upload("u")
        assert released is not None
        assert released.offset == 5
        assert released.lease is None

    async def test_delete_upload(self, store: MetadataStore) -> None:
        await store.create_upload(upload("u"))
        await store.create_upload(upload("v"))
        assert await store.acquire_upload("u", 30) is not None
        assert await store.delete_upload("u") is True
        assert await store.delete_upload("u") is False
        assert await store.get_upload("u") is None
        assert await store.acquire_upload("u", 30) is None
        assert await store.get_upload("v") is not None

    async def test_list_uploads_before(self, store: MetadataStore) -> None:
        for upload_id, age in [("young", 10), ("oldest", 300), ("fresh", 0), ("old", 200)]:
            await store.create_upload(upload(upload_id, age=age))
        cutoff = datetime.now(UTC) - timedelta(seconds=100)
        assert [u.id for u in await store.list_uploads_before(cutoff, 10)] == ["oldest", "old"]
        assert [u.id for u in await store.list_uploads_before(cutoff, 1)] == ["oldest"]
        # Progress on a session makes it recent again.
        assert await store.acquire_upload("oldest", 30) is not None
        await store.release_upload("oldest", offset=10)
        assert [u.id for u in await store.list_uploads_before(cutoff, 10)] == ["old"]

    async def test_acquire_refreshes_the_session(self, store: MetadataStore) -> None:
        await store.create_upload(upload("u", age=300))
        cutoff = datetime.now(UTC) - timedelta(seconds=100)
        assert [u.id for u in await store.list_uploads_before(cutoff, 10)] == ["u"]
        held = await store.acquire_upload("u", 30)
        assert held is not None
        assert held.updated_at > cutoff
        assert await store.list_uploads_before(cutoff, 10) == []

    async def test_complete_upload(self, store: MetadataStore) -> None:
        await store.create_upload(upload("u", repository="library/ubuntu"))
        await store.create_upload(upload("other", repository="library/ubuntu"))
        assert await store.acquire_upload("u", 30) is not None
        await store.complete_upload("u", "library/ubuntu", blob("a"), 1 << 40)
        assert await store.get_upload("u") is None
        assert await store.acquire_upload("u", 30) is None
        assert await store.delete_upload("u") is False
        assert await store.get_upload("other") is not None
        assert await store.repository_exists("library/ubuntu")
        expected = BlobRecord(blob("a"), 1 << 40)
        assert await store.get_blob(blob("a")) == expected
        assert await store.get_repository_blob("library/ubuntu", blob("a")) == expected

    async def test_complete_upload_of_a_blob_already_linked(self, store: MetadataStore) -> None:
        await store.link_blob("elsewhere", blob("a"), 5)
        await store.link_blob("repo", blob("a"), 5)
        for upload_id in ("u", "v"):
            await store.create_upload(upload(upload_id))
            await store.complete_upload(upload_id, "repo", blob("a"), 5)
            assert await store.get_upload(upload_id) is None
        assert await store.get_repository_blob("repo", blob("a")) == BlobRecord(blob("a"), 5)
        assert await store.get_repository_blob("elsewhere", blob("a")) == BlobRecord(blob("a"), 5)
        assert await store.list_repositories(10) == ["elsewhere", "repo"]
        # Linked once: one unlink removes it.
        assert await store.unlink_blob("repo", blob("a")) is True
        assert await store.get_repository_blob("repo", blob("a")) is None

    async def test_complete_upload_without_a_session(self, store: MetadataStore) -> None:
        await store.create_upload(upload("u"))
        assert await store.delete_upload("u") is True
        await store.complete_upload("u", "repo", blob("a"), 5)
        await store.complete_upload("never-created", "repo", blob("b"), 6)
        assert await store.get_upload("u") is None
        assert await store.get_repository_blob("repo", blob("a")) == BlobRecord(blob("a"), 5)
        assert await store.get_repository_blob("repo", blob("b")) == BlobRecord(blob("b"), 6)

    async def test_concurrent_complete_upload_of_one_digest(self, store: MetadataStore) -> None:
        repositories = [f"repo{n % 4}" for n in range(CONCURRENCY)]
        for n, repository in enumerate(repositories):
            await store.create_upload(upload(f"u{n}", repository=repository))
        await asyncio.gather(
            *(
                store.complete_upload(f"u{n}", repository, blob("a"), 7)
                for n, repository in enumerate(repositories)
            )
        )
        cutoff = datetime.now(UTC) + timedelta(minutes=1)
        assert await store.list_uploads_before(cutoff, 100) == []
        assert await store.list_repositories(10) == sorted(set(repositories))
        for repository in set(repositories):
            assert await store.get_repository_blob(repository, blob("a")) == BlobRecord(
                blob("a"), 7
            )

    # -- outbox events ---------------------------------------------------------------------

    async def test_events_commit_with_each_change(self, store: MetadataStore) -> None:
        outbox = outbox_of(store)
        await store.link_blob("repo", blob("a"), 1, [event(1)])
        await store.create_upload(upload("u"))
        await store.complete_upload("u", "repo", blob("b"), 2, [event(2)])
        record = manifest("repo", "m", blobs=[blob("a"), blob("b")])
        await store.put_manifest(record, ["v1"], [event(3), event(4, "b")])
        assert await store.delete_tag("repo", "v1", [event(5)])
        assert await store.delete_manifest("repo", record.digest, [event(6)])
        assert await store.unlink_blob("repo", blob("a"), [event(7)])
        expected = [f'{{"n":{n}}}' for n in (1, 2, 3, 5, 6, 7)]
        assert await bodies(outbox, "a") == expected
        assert await bodies(outbox, "b") == [*expected[:3], '{"n":4}', *expected[3:]]
        assert await outbox.depth("a") == 6
        assert await outbox.depth("nobody") == 0

    async def test_no_change_records_no_event(self, store: MetadataStore) -> None:
        outbox = outbox_of(store)
        assert not await store.unlink_blob("repo", blob("a"), [event(1)])
        assert not await store.delete_manifest("repo", blob("m"), [event(2)])
        assert not await store.delete_tag("repo", "v1", [event(3)])
        with pytest.raises(MissingReferences):
            await store.put_manifest(manifest("repo", "m", blobs=[blob("x")]), (), [event(4)])
        # An event nobody consumes is not written at all.
        await store.link_blob("repo", blob("a"), 1, [OutboxEvent('{"n":5}', ())])
        assert await bodies(outbox, "a") == []
        assert await outbox.sweep() == 0

    async def test_acknowledged_events_are_forgotten(self, store: MetadataStore) -> None:
        outbox = outbox_of(store)
        for n in range(3):
            await store.link_blob("repo", blob(f"{n}"), 1, [event(n)])
        first = await outbox.pending("a", 2)
        assert [p.body for p in first] == ['{"n":0}', '{"n":1}']
        await outbox.acknowledge("a", [p.id for p in first])
        assert await bodies(outbox, "a") == ['{"n":2}']
        assert len(await bodies(outbox, "b")) == 3
        await outbox.acknowledge("b", [p.id for p in await outbox.pending("b", 10)])
        await outbox.acknowledge("a", [p.id for p in await outbox.pending("a", 10)])
        # Every event was deleted with its last delivery: nothing is left to sweep.
        assert await outbox.sweep() == 0
        assert await bodies(outbox, "a") == await bodies(outbox, "b") == []
