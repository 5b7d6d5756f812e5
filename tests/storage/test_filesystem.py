"""The filesystem driver: the storage contract, plus what only a local directory can show."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tracemalloc
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from contracts.storage_suite import MiB, StorageDriverContract, read_all, walk_all, write
from dockyard.storage.base import InvalidPath, PathNotFound, StorageDriver
from dockyard.storage.filesystem import FilesystemDriver


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def fs(root: Path) -> FilesystemDriver:
    return FilesystemDriver(str(root))


class TestFilesystemContract(StorageDriverContract):
    @pytest.fixture
    def driver(self, fs: FilesystemDriver) -> StorageDriver:
        return fs


def tree(root: Path) -> list[str]:
    """Everything below ``root`` on disk, hidden names included; the root must exist."""
    assert root.is_dir()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def read_file(path: str | Path) -> bytes:
    return Path(path).read_bytes()


def test_creates_its_root(tmp_path: Path) -> None:
    FilesystemDriver(str(tmp_path / "new" / "root"))
    assert (tmp_path / "new" / "root").is_dir()


def test_name() -> None:
    assert FilesystemDriver.name == "filesystem"


async def test_layout_on_disk(fs: FilesystemDriver, root: Path) -> None:
    await fs.put_content("blobs/sha256/ab/abcd/data", b"blob")
    assert (root / "blobs/sha256/ab/abcd/data").read_bytes() == b"blob"
    assert tree(root) == ["blobs", "blobs/sha256", "blobs/sha256/ab", "blobs/sha256/ab/abcd",
                          "blobs/sha256/ab/abcd/data"]  # fmt: skip


# -- staying inside the root ----------------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the root, linked from inside it as ``escape``."""
    out = tmp_path / "outside"
    out.mkdir()
    (out / "secret").write_bytes(b"secret")
    return out


@pytest.fixture
def escape(fs: FilesystemDriver, root: Path, outside: Path) -> FilesystemDriver:
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "escape-file").symlink_to(outside / "secret")
    (root / "up").symlink_to("..", target_is_directory=True)
    return fs


Call = Callable[[FilesystemDriver, str], Awaitable[object]]

ESCAPES: dict[str, Call] = {
    "get_content": lambda d, p: d.get_content(p),
    "put_content": lambda d, p: d.put_content(p, b"x"),
    "reader": lambda d, p: read_all(d, p),
    "writer": lambda d, p: d.writer(p),
    "writer-at-offset": lambda d, p: d.writer(p, 1),
    "stat": lambda d, p: d.stat(p),
    "list": lambda d, p: d.list(p),
    "walk": lambda d, p: walk_all(d, p),
    "move-source": lambda d, p: d.move(p, "inside"),
    "move-destination": lambda d, p: d.move("inside", p),
    "delete": lambda d, p: d.delete(p),
}


@pytest.mark.parametrize(
    "path", ["escape/secret", "escape/new/file", "escape", "escape-file", "up/outside/secret"]
)
@pytest.mark.parametrize("call", list(ESCAPES))
async def test_symlink_escape_refused(
    escape: FilesystemDriver, outside: Path, call: str, path: str
) -> None:
    await escape.put_content("inside", b"in")
    with pytest.raises(InvalidPath):
        await ESCAPES[call](escape, path)
    with pytest.raises(InvalidPath):
        escape.local_path(path)
    assert tree(outside) == ["secret"]
    assert (outside / "secret").read_bytes() == b"secret"
    assert await escape.get_content("inside") == b"in"


async def test_listings_hide_escaping_links(escape: FilesystemDriver) -> None:
    await escape.put_content("inside", b"in")
    assert await escape.list("") == ["inside"]
    assert [i.path for i in await walk_all(escape, "")] == ["inside"]


async def test_links_within_the_root_are_followed(fs: FilesystemDriver, root: Path) -> None:
    await fs.put_content("real/data", b"linked")
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    (root / "real" / "loop").symlink_to(root / "real", target_is_directory=True)
    (root / "self").symlink_to(root, target_is_directory=True)
    assert await fs.get_content("alias/data") == b"linked"
    assert await fs.list("alias") == ["alias/data", "alias/loop"]
    # Linked directories are reported but not entered, so a loop cannot recurse; a link to the
    # root itself names no object and is not shown.
    infos = await walk_all(fs, "")
    assert [(i.path, i.is_dir) for i in infos] == [
        ("alias", True),
        ("real", True),
        ("real/data", False),
        ("real/loop", True),
    ]


async def test_link_to_the_root_is_no_object(fs: FilesystemDriver, root: Path) -> None:
    await fs.put_content("data", b"x")
    (root / "self").symlink_to(root, target_is_directory=True)
    with pytest.raises(InvalidPath):
        await fs.delete("self")
    assert await fs.get_content("data") == b"x"


# -- directories on disk --------------------------------------------------------------------


async def test_delete_removes_empty_parents(fs: FilesystemDriver, root: Path) -> None:
    await fs.put_content("a/b/c/d", b"1")
    await fs.put_content("a/x", b"2")
    await fs.delete("a/b/c/d")
    assert tree(root) == ["a", "a/x"]
    await fs.delete("a/x")
    assert tree(root) == []


async def test_delete_tree_leaves_nothing(fs: FilesystemDriver, root: Path) -> None:
    for n in range(20):
        await fs.put_content(f"repo/t/{n % 4}/{n}", b"x")
    await fs.put_content("repo/keep", b"k")
    await fs.delete("repo/t")
    assert tree(root) == ["repo", "repo/keep"]


async def test_move_and_cancel_remove_empty_parents(fs: FilesystemDriver, root: Path) -> None:
    await write(fs, "uploads/u1/data", b"blob")
    await fs.move("uploads/u1/data", "blobs/sha256/ab/ab12/data")
    writer = await fs.writer("uploads/u2/data")
    await writer.write(b"partial")
    await writer.cancel()
    assert tree(root) == ["blobs", "blobs/sha256", "blobs/sha256/ab", "blobs/sha256/ab/ab12",
                          "blobs/sha256/ab/ab12/data"]  # fmt: skip


async def test_scratch_files_are_invisible(fs: FilesystemDriver, root: Path) -> None:
    await fs.put_content("d/data", b"x")
    # What a crash in the middle of put_content or delete leaves behind.
    (root / "d" / ".~put-0123").write_bytes(b"torn")
    (root / "d" / ".~del-4567").mkdir()
    assert await fs.list("d") == ["d/data"]
    assert [i.path for i in await walk_all(fs, "")] == ["d", "d/data"]


# -- direct access --------------------------------------------------------------------------


async def test_local_path(fs: FilesystemDriver, root: Path) -> None:
    await fs.put_content("blobs/data", b"bytes")
    local = fs.local_path("blobs/data")
    assert local == str(root / "blobs" / "data")
    assert read_file(local) == b"bytes"
    assert fs.local_path("blobs") is None
    assert fs.local_path("blobs/missing") is None
    with pytest.raises(InvalidPath):
        fs.local_path("../blobs/data")
    with pytest.raises(InvalidPath):
        fs.local_path("")


async def test_no_redirects(fs: FilesystemDriver) -> None:
    await fs.put_content("data", b"x")
    assert await fs.redirect_url("data") is None
    assert await fs.redirect_url("data", "HEAD") is None


# -- performance properties -----------------------------------------------------------------


async def test_streaming_memory_stays_flat(fs: FilesystemDriver) -> None:
    # Alternate two blocks, so a chunk written twice or out of place changes the digest.
    blocks = [os.urandom(MiB), os.urandom(MiB)]
    expected = hashlib.sha256()
    writer = await fs.writer("source")
    for n in range(200):
        await writer.write(blocks[n % 2])
        expected.update(blocks[n % 2])
    await writer.commit()

    tracemalloc.start()
    try:
        copy = await fs.writer("copy")
        async for chunk in fs.reader("source"):
            await copy.write(chunk)
        await copy.commit()
        got = hashlib.sha256()
        async for chunk in fs.reader("copy"):
            got.update(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.hexdigest() == expected.hexdigest()
    assert copy.size == 200 * MiB
    assert peak < 6 * MiB
    await fs.delete("source")  # pytest keeps recent temporary directories: free the space now
    await fs.delete("copy")


Operation = Callable[[FilesystemDriver, bytes], Coroutine[Any, Any, object]]


async def _write_through(d: FilesystemDriver, data: bytes) -> None:
    await write(d, "w", data)


OPERATIONS: dict[str, Operation] = {
    "put_content": lambda d, data: d.put_content("big", data),
    "get_content": lambda d, data: d.get_content("big"),
    "reader": lambda d, data: read_all(d, "big"),
    "writer": _write_through,
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
async def test_disk_work_leaves_the_event_loop_free(fs: FilesystemDriver, operation: str) -> None:
    data = os.urandom(32 * MiB)
    await fs.put_content("big", data)
    task = asyncio.create_task(OPERATIONS[operation](fs, data))
    ticks = 0
    while not task.done():
        ticks += 1
        await asyncio.sleep(0)
    await task
    # Done inline, the whole operation runs in the task's first step: one tick, before it.
    # A thread hop always lets the ticker run again before the task can resume, however
    # quickly the disk answers, so the check cannot depend on the machine's load.
    assert ticks > 1


async def test_concurrent_deletes_of_one_tree(fs: FilesystemDriver, root: Path) -> None:
    for n in range(50):
        await fs.put_content(f"gone/{n}/data", b"x")
    results = await asyncio.gather(*(fs.delete("gone") for _ in range(4)), return_exceptions=True)
    assert results.count(None) == 1
    assert all(isinstance(r, PathNotFound) for r in results if r is not None)
    assert tree(root) == []


async def test_creating_while_emptied_directories_are_pruned(
    fs: FilesystemDriver, root: Path
) -> None:
    # Every delete prunes the shared chain of directories that the next write must recreate:
    # creation has to survive a directory vanishing between making it and using it.
    async def churn(n: int) -> None:
        for r in range(100):
            path = f"a/b/c/d/e/{n}-{r}"
            if r % 2:
                await fs.put_content(path, b"x")
            else:
                await write(fs, path, b"x")
            await fs.delete(path)

    await asyncio.gather(*(churn(n) for n in range(8)))
    assert tree(root) == []


async def test_closed_writes_are_readable_before_commit(tmp_path: Path) -> None:
    # Filesystem only: S3 cannot read an unfinished multipart upload.
    driver = FilesystemDriver(str(tmp_path))
    writer = await driver.writer("uploads/u1/data")
    await writer.write(b"x" * 1000)
    await writer.close()
    assert (await driver.stat("uploads/u1/data")).size == 1000
    assert await driver.get_content("uploads/u1/data") == b"x" * 1000
