"""The ``filesystem`` driver: objects are files below one root directory.

Disk work runs in worker threads, one hop per call or per 1 MiB chunk, so the event loop never
waits on the disk. Directories exist only while they hold objects (as prefixes do in object
stores): deleting or moving the last object out of a directory removes the emptied directories
up to the root. Every path is resolved, symlinks included, and refused if it leads outside the
root. Scratch files (atomic writes, trees being deleted) carry names outside the path grammar,
so listings never show them.
"""

from __future__ import annotations

import builtins
import ctypes
import functools
import os
import shutil
import stat
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from datetime import UTC, datetime
from typing import cast

from anyio.to_thread import run_sync

from dockyard.storage.base import (
    FileInfo,
    InvalidOffset,
    InvalidPath,
    PathNotFound,
    StorageError,
    check_path,
)

__all__ = ["FilesystemDriver", "FilesystemWriter"]

_CHUNK = 1 << 20
# "~" is outside the path grammar: no client path can name a scratch file.
_SCRATCH = ".~"
# Attempts at creating a file whose parent a concurrent delete may be pruning.
_ATTEMPTS = 8
_MISSING = (FileNotFoundError, NotADirectoryError)


def _object_path(path: str) -> str:
    """Check a path that must name an object or directory below the root (not the root)."""
    if not path:
        raise InvalidPath(path)
    return check_path(path)


def _write_all(fd: int, *buffers: bytes | bytearray) -> None:
    for buffer in buffers:
        view = memoryview(buffer)
        while view:
            view = view[os.write(fd, view) :]


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """Linux's ``sync_file_range``, or None where the C library lacks it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return cast(Callable[[int, int, int, int], int], function)


_SYNC_FILE_RANGE_WRITE = 2


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a range to disk now, without waiting for it, so that
    the fsync at commit finds little left to do."""
    function = _sync_file_range()
    if function is not None:
        function(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def _create(real: str, flags: int) -> int:
    """Open ``real`` with ``O_CREAT``, creating parent directories as needed."""
    parent = os.path.dirname(real)
    for attempt in range(_ATTEMPTS):
        try:
            return os.open(real, flags | os.O_CREAT, 0o666)
        except FileNotFoundError:
            if attempt == _ATTEMPTS - 1:
                raise
            # A concurrent prune may remove what we just created; the next attempt redoes it.
            with suppress(FileNotFoundError):
                os.makedirs(parent, exist_ok=True)
    raise AssertionError("unreachable")


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _visible(name: str) -> bool:
    try:
        check_path(name)
    except InvalidPath:
        return False
    return True


def _info(path: str, st: os.stat_result) -> FileInfo:
    is_dir = stat.S_ISDIR(st.st_mode)
    return FileInfo(
        path=path,
        size=0 if is_dir else st.st_size,
        modified=datetime.fromtimestamp(st.st_mtime, tz=UTC),
        is_dir=is_dir,
    )


class _Root:
    """The root directory and the path arithmetic that keeps every operation inside it."""

    def __init__(self, root: str) -> None:
        os.makedirs(root, exist_ok=True)
        self.path = os.path.realpath(root)
        self._prefix = self.path if self.path.endswith(os.sep) else self.path + os.sep

    def inside(self, real: str) -> bool:
        return real.startswith(self._prefix)

    def resolve(self, path: str) -> str:
        """The real OS path of ``path``; only ``""`` may resolve to the root itself."""
        real = os.path.realpath(os.path.join(self.path, path))
        if real == self.path and path == "":
            return real
        if not self.inside(real):
            raise InvalidPath(path)
        return real

    def prune(self, directory: str) -> None:
        """Remove ``directory`` and its ancestors while they are empty, stopping at the root."""
        while self.inside(directory):
            try:
                os.rmdir(directory)
            except FileNotFoundError:
                pass
            except OSError:
                return
            directory = os.path.dirname(directory)


class FilesystemWriter:
    """Writes one file. Small writes are buffered up to 1 MiB so each thread hop moves a
    worthwhile amount of data."""

    def __init__(self, root: _Root, real: str, fd: int, offset: int) -> None:
        self._root = root
        self._real = real
        self._fd: int | None = fd
        self._size = offset
        self._pending = bytearray()

    @property
    def size(self) -> int:
        return self._size

    def _open_fd(self) -> int:
        if self._fd is None:
            raise StorageError(f"writer for {self._real} is closed")
        return self._fd

    async def write(self, data: bytes | bytearray) -> None:
        fd = self._open_fd()
        if len(self._pending) + len(data) < _CHUNK:
            self._pending += data
        else:
            pending, self._pending = self._pending, bytearray()
            start = self._size - len(pending)
            await run_sync(self._write_through, fd, start, pending, data)
        self._size += len(data)

    @staticmethod
    def _write_through(fd: int, start: int, pending: bytearray, data: bytes | bytearray) -> None:
        _write_all(fd, pending, data)
        _start_writeback(fd, start, len(pending) + len(data))

    async def _finish(self, sync: bool) -> None:
        fd = self._open_fd()
        pending, self._pending = self._pending, bytearray()
        self._fd = None
        await run_sync(self._flush_and_close, fd, pending, sync)

    @staticmethod
    def _flush_and_close(fd: int, pending: bytearray, sync: bool) -> None:
        try:
            _write_all(fd, pending)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)

    async def close(self) -> None:
        if self._fd is not None:
            await self._finish(sync=False)

    async def commit(self) -> None:
        await self._finish(sync=True)

    async def cancel(self) -> None:
        fd, self._fd = self._fd, None
        self._pending = bytearray()
        await run_sync(self._discard, fd)

    def _discard(self, fd: int | None) -> None:
        if fd is not None:
            os.close(fd)
        with suppress(FileNotFoundError):
            os.unlink(self._real)
        self._root.prune(os.path.dirname(self._real))


class FilesystemDriver:
    """A :class:`~dockyard.storage.base.StorageDriver` over a local directory."""

    name = "filesystem"

    def __init__(self, root: str) -> None:
        self._root = _Root(root)

    @property
    def root(self) -> str:
        return self._root.path

    # -- whole objects -------------------------------------------------------------------------

    async def get_content(self, path: str) -> bytes:
        return await run_sync(self._get_content, _object_path(path))

    def _get_content(self, path: str) -> bytes:
        real = self._root.resolve(path)
        try:
            with open(real, "rb") as file:
                return file.read()
        except (*_MISSING, IsADirectoryError):
            raise PathNotFound(path) from None

    async def put_content(self, path: str, data: bytes) -> None:
        await run_sync(self._put_content, _object_path(path), data)

    def _put_content(self, path: str, data: bytes) -> None:
        real = self._root.resolve(path)
        scratch = os.path.join(os.path.dirname(real), f"{_SCRATCH}put-{uuid.uuid4().hex}")
        fd = _create(scratch, os.O_WRONLY | os.O_EXCL)
        try:
            try:
                _write_all(fd, data)
                # Without it a crash after the rename can leave an empty file in place of both
                # the old and the new content.
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(scratch, real)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(scratch)
            raise

    # -- streams -------------------------------------------------------------------------------

    async def reader(
        self, path: str, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        fd, end, chunk = await run_sync(self._open_reader, _object_path(path), offset, length)
        try:
            position = offset
            while True:
                if not chunk and position < end:
                    raise StorageError(f"{path} shrank while being read")
                if chunk:
                    yield chunk
                    position += len(chunk)
                if position >= end:
                    return
                chunk = await run_sync(os.pread, fd, min(_CHUNK, end - position), position)
        finally:
            # Closing a read-only descriptor does no disk I/O; doing it inline keeps cleanup
            # working when the generator is finalised without a running loop.
            os.close(fd)

    def _open_reader(self, path: str, offset: int, length: int | None) -> tuple[int, int, bytes]:
        """Open, check the range and read the first chunk, all in one thread hop."""
        real = self._root.resolve(path)
        try:
            fd = os.open(real, os.O_RDONLY)
        except _MISSING:
            raise PathNotFound(path) from None
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise PathNotFound(path)
            end = st.st_size if length is None else offset + length
            if offset < 0 or end < offset or end > st.st_size:
                raise InvalidOffset(path, offset)
            first = os.pread(fd, min(_CHUNK, end - offset), offset) if end > offset else b""
        except BaseException:
            os.close(fd)
            raise
        return fd, end, first

    async def writer(self, path: str, offset: int = 0) -> FilesystemWriter:
        real, fd = await run_sync(self._open_writer, _object_path(path), offset)
        return FilesystemWriter(self._root, real, fd, offset)

    def _open_writer(self, path: str, offset: int) -> tuple[str, int]:
        real = self._root.resolve(path)
        if offset < 0:
            raise InvalidOffset(path, offset)
        if offset == 0:
            return real, _create(real, os.O_WRONLY | os.O_TRUNC)
        try:
            fd = os.open(real, os.O_WRONLY)
        except _MISSING:
            raise PathNotFound(path) from None
        try:
            if os.fstat(fd).st_size < offset:
                raise InvalidOffset(path, offset)
            os.ftruncate(fd, offset)
            os.lseek(fd, offset, os.SEEK_SET)
        except BaseException:
            os.close(fd)
            raise
        return real, fd

    # -- namespace -----------------------------------------------------------------------------

    async def stat(self, path: str) -> FileInfo:
        return await run_sync(self._stat, _object_path(path))

    def _stat(self, path: str) -> FileInfo:
        real = self._root.resolve(path)
        try:
            return _info(path, os.stat(real))
        except _MISSING:
            raise PathNotFound(path) from None

    async def list(self, path: str) -> list[str]:
        return await run_sync(self._list, check_path(path))

    def _list(self, path: str) -> builtins.list[str]:
        prefix = f"{path}/" if path else ""
        return [prefix + entry.name for entry in self._entries(path)]

    def _entries(self, path: str) -> builtins.list[os.DirEntry[str]]:
        """The visible entries of a directory, sorted by name: no scratch files and no
        symlinks leading out of the root."""
        real = self._root.resolve(path)
        try:
            with os.scandir(real) as entries:
                found = [
                    entry
                    for entry in entries
                    if _visible(entry.name)
                    and (not entry.is_symlink() or self._root.inside(os.path.realpath(entry.path)))
                ]
        except _MISSING:
            raise PathNotFound(path) from None
        return sorted(found, key=lambda entry: entry.name)

    async def move(self, source: str, destination: str) -> None:
        await run_sync(self._move, _object_path(source), _object_path(destination))

    def _move(self, source: str, destination: str) -> None:
        src = self._root.resolve(source)
        dst = self._root.resolve(destination)
        target_dir = os.path.dirname(dst)
        for attempt in range(_ATTEMPTS):
            try:
                os.replace(src, dst)
                break
            except FileNotFoundError:
                if not os.path.lexists(src):
                    raise PathNotFound(source) from None
                if attempt == _ATTEMPTS - 1:
                    raise
                with suppress(FileNotFoundError):
                    os.makedirs(target_dir, exist_ok=True)
        _fsync_dir(target_dir)
        self._root.prune(os.path.dirname(src))

    async def delete(self, path: str) -> None:
        await run_sync(self._delete, _object_path(path))

    def _delete(self, path: str) -> None:
        real = self._root.resolve(path)
        try:
            if os.path.isdir(real):
                # Renaming first makes the tree vanish at once for every other caller; the
                # slow removal then works on a private name nobody else can reach.
                doomed = os.path.join(os.path.dirname(real), f"{_SCRATCH}del-{uuid.uuid4().hex}")
                os.rename(real, doomed)
                shutil.rmtree(doomed)
            else:
                os.unlink(real)
        except _MISSING:
            raise PathNotFound(path) from None
        self._root.prune(os.path.dirname(real))

    async def walk(self, path: str) -> AsyncIterator[FileInfo]:
        pending = [iter(await run_sync(self._scan, check_path(path)))]
        while pending:
            step = next(pending[-1], None)
            if step is None:
                pending.pop()
                continue
            info, descend = step
            yield info
            if descend:
                try:
                    children = await run_sync(self._scan, info.path)
                except PathNotFound:
                    continue  # deleted since it was listed
                pending.append(iter(children))

    def _scan(self, path: str) -> builtins.list[tuple[FileInfo, bool]]:
        """A directory's entries with their stat, each with whether to descend into it.
        Symlinked directories are reported but not entered, so a link cannot make a cycle."""
        prefix = f"{path}/" if path else ""
        found: builtins.list[tuple[FileInfo, bool]] = []
        for entry in self._entries(path):
            try:
                info = _info(prefix + entry.name, entry.stat())
            except FileNotFoundError:
                continue  # deleted since it was listed, or a dangling link
            found.append((info, info.is_dir and not entry.is_symlink()))
        return found

    # -- direct access -------------------------------------------------------------------------

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        _object_path(path)
        return None

    def local_path(self, path: str) -> str | None:
        real = self._root.resolve(_object_path(path))
        return real if os.path.isfile(real) else None
