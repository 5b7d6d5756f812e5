"""The contract every ``StorageDriver`` keeps.

A driver's test module plugs it in with a subclass that provides a ``driver`` fixture giving a
fresh, empty store for each test::

    from contracts.storage_suite import StorageDriverContract

    class TestMyDriver(StorageDriverContract):
        @pytest.fixture
        def driver(self, tmp_path: Path) -> StorageDriver:
            return MyDriver(...)
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from dockyard.storage.base import (
    FileInfo,
    InvalidOffset,
    InvalidPath,
    PathNotFound,
    StorageDriver,
    StorageError,
)

MiB = 1 << 20

BAD_PATHS = [
    "../x",
    "a/../b",
    "/abs",
    "a//b",
    "a/./b",
    "./a",
    "a/",
    "a b",
    "with space/x",
    "a\\b",
    "a\x00b",
    "é",
]


async def read_all(
    driver: StorageDriver, path: str, offset: int = 0, length: int | None = None
) -> bytes:
    return b"".join([chunk async for chunk in driver.reader(path, offset, length)])


async def write(driver: StorageDriver, path: str, *pieces: bytes, offset: int = 0) -> None:
    writer = await driver.writer(path, offset)
    for piece in pieces:
        await writer.write(piece)
    await writer.commit()


async def walk_all(driver: StorageDriver, path: str) -> list[FileInfo]:
    return [info async for info in driver.walk(path)]


async def exists(driver: StorageDriver, path: str) -> bool:
    try:
        await driver.stat(path)
    except PathNotFound:
        return False
    return True


def read_local(local: str) -> bytes:
    with open(local, "rb") as file:
        return file.read()


Call = Callable[[StorageDriver, str], Awaitable[object]]


async def _writer_at(driver: StorageDriver, path: str, offset: int) -> None:
    writer = await driver.writer(path, offset)
    await writer.cancel()


# Every method that takes an object path, called with ``path`` in each place it could go.
OBJECT_CALLS: dict[str, Call] = {
    "get_content": lambda d, p: d.get_content(p),
    "put_content": lambda d, p: d.put_content(p, b"x"),
    "reader": lambda d, p: read_all(d, p),
    "writer": lambda d, p: _writer_at(d, p, 0),
    "stat": lambda d, p: d.stat(p),
    "move-source": lambda d, p: d.move(p, "elsewhere"),
    "move-destination": lambda d, p: d.move("present", p),
    "delete": lambda d, p: d.delete(p),
    "redirect_url": lambda d, p: d.redirect_url(p),
}
# Methods that also accept ``""`` for the root.
TREE_CALLS: dict[str, Call] = {
    "list": lambda d, p: d.list(p),
    "walk": lambda d, p: walk_all(d, p),
}
# Every method that raises PathNotFound, called on a path with nothing there.
MISSING_CALLS: dict[str, Call] = {
    "get_content": lambda d, p: d.get_content(p),
    "reader": lambda d, p: read_all(d, p),
    "reader-at-offset": lambda d, p: read_all(d, p, 3, 1),
    "writer-at-offset": lambda d, p: _writer_at(d, p, 1),
    "stat": lambda d, p: d.stat(p),
    "list": lambda d, p: d.list(p),
    "move": lambda d, p: d.move(p, "elsewhere"),
    "delete": lambda d, p: d.delete(p),
    "walk": lambda d, p: walk_all(d, p),
}


class StorageDriverContract:
    """Tests any ``StorageDriver`` through its public surface only."""

    @pytest.fixture
    def driver(self) -> StorageDriver:
        raise NotImplementedError("a driver's test class provides the `driver` fixture")

    # -- shape ---------------------------------------------------------------------------------

    def test_satisfies_the_protocol(self, driver: StorageDriver) -> None:
        assert isinstance(driver, StorageDriver)
        assert isinstance(driver.name, str)
        assert driver.name

    # -- paths ---------------------------------------------------------------------------------

    @pytest.mark.parametrize("bad", BAD_PATHS)
    @pytest.mark.parametrize("call", list(OBJECT_CALLS | TREE_CALLS))
    async def test_invalid_path(self, driver: StorageDriver, call: str, bad: str) -> None:
        await driver.put_content("present", b"here")
        with pytest.raises(InvalidPath):
            await (OBJECT_CALLS | TREE_CALLS)[call](driver, bad)
        assert await driver.get_content("present") == b"here"
        assert await driver.list("") == ["present"]

    @pytest.mark.parametrize("call", list(OBJECT_CALLS))
    async def test_empty_path_names_no_object(self, driver: StorageDriver, call: str) -> None:
        await driver.put_content("present", b"here")
        with pytest.raises(InvalidPath):
            await OBJECT_CALLS[call](driver, "")
        assert await driver.list("") == ["present"]

    async def test_every_character_of_the_grammar(self, driver: StorageDriver) -> None:
        path = "Az09/a.b_c:d-e/sha256:0123abcdef/.hidden"
        await driver.put_content(path, b"ok")
        assert await driver.get_content(path) == b"ok"
        assert await driver.list("Az09/a.b_c:d-e") == ["Az09/a.b_c:d-e/sha256:0123abcdef"]

    @pytest.mark.parametrize("call", list(MISSING_CALLS))
    async def test_path_not_found(self, driver: StorageDriver, call: str) -> None:
        await driver.put_content("other/present", b"here")
        with pytest.raises(PathNotFound):
            await MISSING_CALLS[call](driver, "missing/data")
        assert await driver.list("") == ["other"]

    @pytest.mark.parametrize("call", ["get_content", "reader"])
    async def test_directory_is_no_object(self, driver: StorageDriver, call: str) -> None:
        await driver.put_content("dir/data", b"x")
        with pytest.raises(PathNotFound):
            await MISSING_CALLS[call](driver, "dir")

    # -- whole objects -------------------------------------------------------------------------

    @pytest.mark.parametrize("size", [0, 1, 4096, MiB + 3])
    async def test_put_get_round_trip(self, driver: StorageDriver, size: int) -> None:
        data = os.urandom(size)
        await driver.put_content("a/b/c", data)
        assert await driver.get_content("a/b/c") == data
        assert (await driver.stat("a/b/c")).size == size

    async def test_put_content_replaces(self, driver: StorageDriver) -> None:
        await driver.put_content("p", b"a longer first version")
        await driver.put_content("p", b"short")
        assert await driver.get_content("p") == b"short"
        assert await driver.list("") == ["p"]

    async def test_put_content_replaces_atomically(self, driver: StorageDriver) -> None:
        versions = [bytes([n]) * (2 * MiB) for n in range(2)]
        await driver.put_content("p", versions[0])
        seen: list[bytes] = []

        async def replace() -> None:
            for n in range(10):
                await driver.put_content("p", versions[n % 2])

        async def read() -> None:
            for _ in range(20):
                seen.append(await driver.get_content("p"))

        await asyncio.gather(replace(), read(), read())
        assert len(seen) == 40
        assert all(content in versions for content in seen)
        assert await driver.list("") == ["p"]

    # -- reader --------------------------------------------------------------------------------

    async def test_large_round_trip(self, driver: StorageDriver) -> None:
        data = os.urandom(20 * MiB)
        view = memoryview(data)
        # Uneven pieces, so no chunk boundary of the driver lines up with a write.
        pieces = [bytes(view[i : i + 3 * MiB + 7]) for i in range(0, len(data), 3 * MiB + 7)]
        await write(driver, "big/data", *pieces)
        assert (await driver.stat("big/data")).size == len(data)
        digest = hashlib.sha256()
        async for chunk in driver.reader("big/data"):
            assert isinstance(chunk, bytes)
            assert chunk
            digest.update(chunk)
        assert digest.digest() == hashlib.sha256(data).digest()

    async def test_large_single_write(self, driver: StorageDriver) -> None:
        data = os.urandom(20 * MiB)
        await write(driver, "big", data)
        assert await read_all(driver, "big") == data
        assert await read_all(driver, "big", 19 * MiB + 5, 100) == data[19 * MiB + 5 :][:100]

    @pytest.mark.parametrize(
        ("offset", "length"),
        [(0, None), (1, None), (0, 0), (0, 10), (7, 3), (99, 1), (99, None), (100, None),
         (100, 0), (0, 100), (50, 50)],
    )  # fmt: skip
    async def test_reader_range(
        self, driver: StorageDriver, offset: int, length: int | None
    ) -> None:
        data = bytes(range(100))
        await driver.put_content("r", data)
        end = len(data) if length is None else offset + length
        assert await read_all(driver, "r", offset, length) == data[offset:end]

    @pytest.mark.parametrize(
        ("offset", "length"), [(101, None), (-1, None), (0, 101), (100, 1), (50, 51), (5, -1)]
    )
    async def test_reader_range_beyond_content(
        self, driver: StorageDriver, offset: int, length: int | None
    ) -> None:
        await driver.put_content("r", bytes(100))
        with pytest.raises(InvalidOffset):
            await read_all(driver, "r", offset, length)

    async def test_reader_is_lazy(self, driver: StorageDriver) -> None:
        stream = driver.reader("missing")  # nothing happens until iterated
        with pytest.raises(PathNotFound):
            await anext(stream)

    async def test_reader_stopped_early(self, driver: StorageDriver) -> None:
        await write(driver, "s", os.urandom(5 * MiB))
        for _ in range(20):
            stream = driver.reader("s")
            assert await anext(stream)
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        await driver.delete("s")
        assert await driver.list("") == []

    async def test_many_concurrent_readers(self, driver: StorageDriver) -> None:
        data = os.urandom(3 * MiB)
        await write(driver, "shared", data)
        ranges = [(n * 37_123 % len(data), None if n % 3 else 1 + n * 9_999) for n in range(64)]
        results = await asyncio.gather(*(read_all(driver, "shared", o, n) for o, n in ranges))
        for (offset, length), got in zip(ranges, results, strict=True):
            end = len(data) if length is None else offset + length
            assert got == data[offset:end]

    # -- writer --------------------------------------------------------------------------------

    async def test_writer_appends_and_counts(self, driver: StorageDriver) -> None:
        writer = await driver.writer("w/data")
        assert writer.size == 0
        await writer.write(b"hello ")
        await writer.write(b"")
        await writer.write(b"world")
        assert writer.size == 11
        await writer.commit()
        assert await driver.get_content("w/data") == b"hello world"
        info = await driver.stat("w/data")
        assert (info.size, info.is_dir, info.path) == (11, False, "w/data")

    async def test_writer_at_zero_starts_afresh(self, driver: StorageDriver) -> None:
        await driver.put_content("w", b"old content")
        await write(driver, "w", b"new")
        assert await driver.get_content("w") == b"new"

    async def test_writer_resumes_at_offset(self, driver: StorageDriver) -> None:
        await write(driver, "w", b"first ")
        writer = await driver.writer("w", 6)
        assert writer.size == 6
        await writer.write(b"second")
        assert writer.size == 12
        await writer.commit()
        assert await driver.get_content("w") == b"first second"

    async def test_writer_resume_discards_content_beyond_offset(
        self, driver: StorageDriver
    ) -> None:
        await write(driver, "w", b"keep", b"-discard-this")
        await write(driver, "w", b"+new", offset=4)
        assert await driver.get_content("w") == b"keep+new"

    async def test_writer_resume_at_end_writing_nothing(self, driver: StorageDriver) -> None:
        await write(driver, "w", b"whole")
        await write(driver, "w", offset=5)
        assert await driver.get_content("w") == b"whole"

    async def test_writer_close_then_resume(self, driver: StorageDriver) -> None:
        data = os.urandom(3 * MiB + 11)
        offset = 0
        for piece in (data[: MiB - 1], data[MiB - 1 : 2 * MiB], data[2 * MiB :]):
            writer = await driver.writer("uploads/u1/data", offset)
            await writer.write(piece)
            await writer.close()
            offset = writer.size
            # Whatever was written before close is there for the next writer (which may run in
            # another process); reading it before commit is not part of the contract.
        assert offset == len(data)
        final = await driver.writer("uploads/u1/data", offset)
        await final.commit()
        assert await read_all(driver, "uploads/u1/data") == data

    async def test_writer_offset_beyond_content(self, driver: StorageDriver) -> None:
        await driver.put_content("w", b"12345")
        with pytest.raises(InvalidOffset):
            await driver.writer("w", 6)
        with pytest.raises(InvalidOffset):
            await driver.writer("w", -1)
        assert await driver.get_content("w") == b"12345"

    async def test_writer_cancel(self, driver: StorageDriver) -> None:
        await driver.put_content("keep", b"k")
        writer = await driver.writer("uploads/u2/data")
        await writer.write(os.urandom(2 * MiB))
        await writer.cancel()
        assert not await exists(driver, "uploads/u2/data")
        assert await driver.list("") == ["keep"]

    async def test_writer_cancel_after_close(self, driver: StorageDriver) -> None:
        writer = await driver.writer("w")
        await writer.write(b"partial")
        await writer.close()
        resumed = await driver.writer("w", 7)
        await resumed.write(b" more")
        await resumed.cancel()
        assert not await exists(driver, "w")

    async def test_writer_rejects_writes_after_commit(self, driver: StorageDriver) -> None:
        writer = await driver.writer("w")
        await writer.write(b"done")
        await writer.commit()
        with pytest.raises(StorageError):
            await writer.write(b"late")
        assert await driver.get_content("w") == b"done"

    async def test_concurrent_writers_to_different_paths(self, driver: StorageDriver) -> None:
        contents = {f"uploads/{n}/data": os.urandom(MiB // 2 + n * 4099) for n in range(8)}

        async def upload(path: str, data: bytes) -> None:
            writer = await driver.writer(path)
            for start in range(0, len(data), 65_536):
                await writer.write(data[start : start + 65_536])
                await asyncio.sleep(0)  # interleave with the others
            await writer.commit()

        await asyncio.gather(*(upload(path, data) for path, data in contents.items()))
        for path, data in contents.items():
            assert await read_all(driver, path) == data
        assert await driver.list("uploads") == sorted(f"uploads/{n}" for n in range(8))

    # -- stat ----------------------------------------------------------------------------------

    async def test_stat_object(self, driver: StorageDriver) -> None:
        await driver.put_content("s/t", b"12345")
        info = await driver.stat("s/t")
        assert info == FileInfo("s/t", 5, info.modified, False)
        assert info.modified.tzinfo is not None
        assert abs(info.modified - datetime.now(UTC)) < timedelta(minutes=5)

    async def test_stat_directory(self, driver: StorageDriver) -> None:
        await driver.put_content("s/t/u", b"12345")
        info = await driver.stat("s/t")
        assert (info.path, info.is_dir) == ("s/t", True)

    # -- list ----------------------------------------------------------------------------------

    async def test_list_sorted_direct_children(self, driver: StorageDriver) -> None:
        for path in ["d/b", "d/a", "d/c/deep/x", "d/a-1", "d/B", "d/a.b", "e"]:
            await driver.put_content(path, b"x")
        assert await driver.list("d") == ["d/B", "d/a", "d/a-1", "d/a.b", "d/b", "d/c"]
        assert await driver.list("d/c") == ["d/c/deep"]
        assert await driver.list("") == ["d", "e"]

    async def test_list_empty_store(self, driver: StorageDriver) -> None:
        assert await driver.list("") == []
        assert await walk_all(driver, "") == []

    async def test_list_an_object(self, driver: StorageDriver) -> None:
        await driver.put_content("f", b"x")
        with pytest.raises(PathNotFound):
            await driver.list("f")

    # -- move ----------------------------------------------------------------------------------

    async def test_move(self, driver: StorageDriver) -> None:
        data = os.urandom(MiB + 1)
        await write(driver, "uploads/u/data", data)
        await driver.move("uploads/u/data", "blobs/sha256/ab/abcd/data")
        assert await read_all(driver, "blobs/sha256/ab/abcd/data") == data
        assert not await exists(driver, "uploads/u/data")
        # The emptied directory goes with its last object.
        assert await driver.list("") == ["blobs"]

    async def test_move_replaces_destination(self, driver: StorageDriver) -> None:
        await driver.put_content("src", b"new")
        await driver.put_content("dst/data", b"old and longer")
        await driver.move("src", "dst/data")
        assert await driver.get_content("dst/data") == b"new"
        assert await driver.list("") == ["dst"]

    async def test_move_missing_source(self, driver: StorageDriver) -> None:
        await driver.put_content("dst", b"untouched")
        with pytest.raises(PathNotFound):
            await driver.move("nothing/here", "dst")
        assert await driver.get_content("dst") == b"untouched"
        assert await driver.list("") == ["dst"]

    async def test_move_onto_itself(self, driver: StorageDriver) -> None:
        await driver.put_content("same", b"x")
        await driver.move("same", "same")
        assert await driver.get_content("same") == b"x"

    # -- delete --------------------------------------------------------------------------------

    async def test_delete_object(self, driver: StorageDriver) -> None:
        await driver.put_content("a/one", b"1")
        await driver.put_content("a/two", b"2")
        await driver.delete("a/one")
        assert not await exists(driver, "a/one")
        assert await driver.list("a") == ["a/two"]

    async def test_delete_tree(self, driver: StorageDriver) -> None:
        keep = ["t-x", "t2/x", "tt", "u/t/x"]
        for path in ["t/a", "t/b/c", "t/b/d/e", *keep]:
            await driver.put_content(path, b"x")
        await driver.delete("t")
        assert not await exists(driver, "t")
        with pytest.raises(PathNotFound):
            await driver.get_content("t/b/c")
        for path in keep:
            assert await driver.get_content(path) == b"x"
        assert await driver.list("") == ["t-x", "t2", "tt", "u"]

    async def test_delete_removes_emptied_directories(self, driver: StorageDriver) -> None:
        await driver.put_content("x/y/z/data", b"1")
        await driver.put_content("x/other", b"2")
        await driver.delete("x/y/z/data")
        assert await driver.list("x") == ["x/other"]
        with pytest.raises(PathNotFound):
            await driver.list("x/y")
        await driver.delete("x/other")
        assert await driver.list("") == []

    async def test_delete_twice(self, driver: StorageDriver) -> None:
        await driver.put_content("d", b"x")
        await driver.delete("d")
        with pytest.raises(PathNotFound):
            await driver.delete("d")

    async def test_concurrent_deletes_and_writes_share_directories(
        self, driver: StorageDriver
    ) -> None:
        async def churn(n: int) -> None:
            for round_ in range(10):
                path = f"shared/{n % 2}/{n}-{round_}"
                await driver.put_content(path, b"x")
                await driver.delete(path)

        async def keep(n: int) -> None:
            for round_ in range(10):
                await write(driver, f"shared/{n % 2}/keep-{n}-{round_}", b"k")

        await asyncio.gather(*(churn(n) for n in range(6)), *(keep(n) for n in range(2)))
        infos = await walk_all(driver, "shared")
        assert [i.path for i in infos if not i.is_dir] == sorted(
            f"shared/{n % 2}/keep-{n}-{r}" for n in range(2) for r in range(10)
        )

    # -- walk ----------------------------------------------------------------------------------

    async def test_walk_depth_first_sorted(self, driver: StorageDriver) -> None:
        files = {"a/b/c": 3, "a/d": 1, "a-x": 2, "b": 0, "a/b/a": 5, "c/z/y/x": 4}
        for path, size in files.items():
            await driver.put_content(path, bytes(size))
        infos = await walk_all(driver, "")
        assert [(i.path, i.is_dir) for i in infos] == [
            ("a", True),
            ("a/b", True),
            ("a/b/a", False),
            ("a/b/c", False),
            ("a/d", False),
            ("a-x", False),
            ("b", False),
            ("c", True),
            ("c/z", True),
            ("c/z/y", True),
            ("c/z/y/x", False),
        ]
        assert {i.path: i.size for i in infos if not i.is_dir} == files

    async def test_walk_below_a_path(self, driver: StorageDriver) -> None:
        for path in ["a/b/c", "a/d", "ab/x"]:
            await driver.put_content(path, b"x")
        assert [i.path for i in await walk_all(driver, "a")] == ["a/b", "a/b/c", "a/d"]
        assert [i.path for i in await walk_all(driver, "a/b")] == ["a/b/c"]

    # -- direct access -------------------------------------------------------------------------

    async def test_redirect_url(self, driver: StorageDriver) -> None:
        await driver.put_content("r", b"x")
        url = await driver.redirect_url("r")
        assert url is None or url.startswith(("http://", "https://"))

    async def test_local_path(self, driver: StorageDriver) -> None:
        await driver.put_content("l/data", b"local")
        local = driver.local_path("l/data")
        if local is not None:
            assert os.path.isabs(local)
            assert read_local(local) == b"local"
        assert driver.local_path("l/missing") is None
