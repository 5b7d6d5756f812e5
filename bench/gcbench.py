"""Garbage collection cost: Dockyard's online collector against Distribution's offline
mark and sweep, on registries of 10k and 100k manifests with a share of garbage.

    python bench/gcbench.py [--quick] [--no-distribution] [--output FILE] [--json FILE]
    python bench/run.py --gc [--quick] ...

Each case seeds a fresh registry (``seed``): ``manifests`` images of a unique config and
layer plus a base layer shared by their repository, 100 images a repository, each tagged;
every blob a real content-addressed file under ``blobs/sha256/<xx>/<hex>/data`` and every
row in Dockyard's SQLite database, written in bulk as a registry whose collector has kept up
holds them (nothing queued). Then the garbage is made through Dockyard's metadata store, as
clients would: ``garbage`` x manifests tags deleted (their images now untagged, each freeing
its config and layer) and as many blobs pushed and deleted, each write queuing its
candidates in its own transaction.

Measured on Dockyard: ``dockyard gc --delete-untagged`` (the command, process start
included), then once more with nothing left to collect; and the same collection in process,
counting every storage driver call and SQL statement, and SQLite's virtual machine steps
(a measure of rows examined: a step is one instruction of a compiled statement, so a
statement that scans a table takes steps in proportion to its rows). The database and the
garbage's files are restored between the two runs, so both start from the same state.

Distribution 2.8.2 (``docker-registry garbage-collect --delete-untagged``) runs on the same
content in its own layout (``docker/registry/v2/``: the blob files hard-linked, manifests
stored as blobs, ``_layers``, ``_manifests/revisions`` and ``_manifests/tags`` links), for
the cases marked so (writing its layout takes minutes at 10k on a busy machine).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Table, create_engine, event

from dockyard.core.gc import Collector
from dockyard.metadata.factory import open_store
from dockyard.metadata.gc import GcStore
from dockyard.metadata.schema import (
    blobs,
    manifest_blobs,
    manifests,
    repositories,
    repository_blobs,
    tags,
)
from dockyard.metadata.sqlite import SqliteDatabase
from dockyard.storage.base import FileInfo, StorageWriter
from dockyard.storage.filesystem import FilesystemDriver
from registry import OCI_MANIFEST, image_config, image_manifest, sha256

__all__ = ["CASES", "QUICK_CASES", "Case", "CaseResult", "main", "render", "run_cases"]

PER_REPOSITORY = 100
# How many VM instructions SQLite runs between two calls of the progress handler. SQLite
# counts them per prepared statement, which the driver caches and reuses, so each distinct
# statement leaves at most this many uncounted: small, to count nearly every one.
VM_STEP_UNIT = 10


@dataclass(frozen=True, slots=True)
class Case:
    manifests: int
    garbage: float  # the share of manifests left untagged; as many loose blobs again
    distribution: bool = False  # also time Distribution on it

    @property
    def untagged(self) -> int:
        return max(1, round(self.manifests * self.garbage))

    @property
    def label(self) -> str:
        return f"{self.manifests:,} manifests, {self.garbage:.1%} garbage"


CASES = [
    Case(10_000, 0.01, distribution=True),
    Case(100_000, 0.01),
    Case(10_000, 0.001),
    Case(10_000, 0.10),
]
QUICK_CASES = [Case(200, 0.01, distribution=True), Case(200, 0.05)]


@dataclass
class CaseResult:
    case: Case
    repositories: int = 0
    blob_files: int = 0
    seed_seconds: float = 0.0
    garbage_blobs: int = 0  # blobs the garbage frees: its images' configs and layers, loose
    # Dockyard
    cli_seconds: float = 0.0
    cli_idle_seconds: float = 0.0  # a second run, nothing left to collect
    collect_seconds: float = 0.0  # in process
    removed_manifests: int = 0
    removed_blobs: int = 0
    storage_calls: dict[str, int] = field(default_factory=dict)
    statements: int = 0
    vm_steps: int = 0
    # Distribution
    distribution_seconds: float | None = None
    distribution_removed_blobs: int | None = None
    distribution_error: str = ""
    errors: list[str] = field(default_factory=list)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- seeding ------------------------------------------------------------------------------


@dataclass
class Seeded:
    root: Path  # Dockyard's storage root; its database is root / "dockyard.db"
    config: Path
    # Blob digests by repository, manifest payloads by digest, for Distribution's layout.
    links: dict[str, set[str]]
    revisions: dict[str, dict[str, bytes]]
    tagged: dict[str, dict[str, str]]
    loose: list[str]
    garbage_files: dict[str, bytes]  # what the collector will delete, to restore it


def _blob_file(root: Path, digest: str) -> Path:
    hex_digest = digest.split(":", 1)[1]
    return root / "blobs" / "sha256" / hex_digest[:2] / hex_digest / "data"


def _write_blob(root: Path, data: bytes) -> str:
    digest = sha256(data)
    path = _blob_file(root, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def _bulk_insert(url: str, rows: dict[Table, list[dict[str, Any]]]) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for table, values in rows.items():
                for start in range(0, len(values), 20_000):
                    conn.execute(table.insert(), values[start : start + 20_000])
    finally:
        engine.dispose()


async def _make_garbage(url: str, seeded: Seeded, untag: list[tuple[str, str]], loose: int) -> None:
    """Through the metadata store, as pushes and deletes would: tags deleted, blobs pushed
    (linked) then deleted (unlinked)."""
    store = await open_store(url)
    try:
        for repository, tag in untag:
            assert await store.delete_tag(repository, tag)
        names = sorted(seeded.links)
        for n in range(loose):
            data = json.dumps({"loose": n, "pad": os.urandom(48).hex()}).encode()
            digest = _write_blob(seeded.root, data)
            repository = names[n % len(names)]
            await store.link_blob(repository, digest, len(data))
            assert await store.unlink_blob(repository, digest)
            seeded.loose.append(digest)
            seeded.garbage_files[digest] = data
    finally:
        await store.close()


def seed(work: Path, case: Case, rng: random.Random) -> tuple[Seeded, int]:
    """A registry as the module docstring describes; and how many blobs the garbage frees."""
    root = work / "dockyard"
    root.mkdir(parents=True)
    url = f"sqlite:///{root / 'dockyard.db'}"
    config = work / "dockyard.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "version": 0.1,
                "log": {"level": "warn"},
                "storage": {
                    "filesystem": {"rootdirectory": str(root)},
                    "delete": {"enabled": True},
                },
                "database": {"url": url},
                "gc": {"enabled": False, "grace": 0},
            }
        )
    )
    asyncio.run(_migrate(url))
    seeded = Seeded(root, config, {}, {}, {}, [], {})
    long_ago = datetime.now(UTC) - timedelta(days=2)
    count = max(1, case.manifests // PER_REPOSITORY)
    rows: dict[Table, list[dict[str, Any]]] = {
        table: [] for table in (repositories, blobs, repository_blobs, manifests, tags)
    }
    rows[manifest_blobs] = []
    sizes: dict[str, int] = {}
    bases = []
    for r in range(count):
        name = f"team{r % 10}/app{r}"
        base = rng.randbytes(512)
        bases.append((name, _write_blob(root, base), len(base)))
        sizes[bases[-1][1]] = len(base)
        rows[repositories].append({"id": r + 1, "name": name})
        seeded.links[name] = {bases[-1][1]}
        seeded.revisions[name] = {}
        seeded.tagged[name] = {}
    # Images chosen at random lose their tag (never all of a repository's, in practice, so
    # that no base layer joins the garbage).
    chosen = set(rng.sample(range(case.manifests), case.untagged))
    untag: list[tuple[str, str]] = []
    freed = 0
    for i in range(case.manifests):
        r = i % count
        name, base_digest, base_size = bases[r]
        layer = rng.randbytes(256)
        layer_digest = _write_blob(root, layer)
        config_blob = image_config([base_digest, layer_digest], f"image {i}")
        config_digest = _write_blob(root, config_blob)
        sizes[layer_digest], sizes[config_digest] = len(layer), len(config_blob)
        payload = image_manifest(
            (config_digest, len(config_blob)),
            [(base_digest, base_size), (layer_digest, len(layer))],
        )
        digest = sha256(payload)
        tag = f"v{i // count}"
        seeded.links[name] |= {config_digest, layer_digest}
        seeded.revisions[name][digest] = payload
        rows[manifests].append(
            {
                "id": i + 1,
                "repository_id": r + 1,
                "digest": digest,
                "media_type": OCI_MANIFEST,
                "size": len(payload),
                "payload": payload,
                "created_at": long_ago,
            }
        )
        rows[manifest_blobs] += [
            {"manifest_id": i + 1, "digest": d} for d in (base_digest, config_digest, layer_digest)
        ]
        rows[tags].append(
            {"repository_id": r + 1, "name": tag, "manifest_id": i + 1, "updated_at": long_ago}
        )
        seeded.tagged[name][tag] = digest
        if i in chosen:
            untag.append((name, tag))
            del seeded.tagged[name][tag]
            freed += 2
            seeded.garbage_files[config_digest] = config_blob
            seeded.garbage_files[layer_digest] = layer
    ids = {name: index + 1 for index, (name, _, _) in enumerate(bases)}
    for name, digests in seeded.links.items():
        for digest in sorted(digests):
            rows[repository_blobs].append(
                {"repository_id": ids[name], "digest": digest, "created_at": long_ago}
            )
    rows[blobs] = [
        {"digest": d, "size": s, "created_at": long_ago} for d, s in sorted(sizes.items())
    ]
    _bulk_insert(url, rows)
    asyncio.run(_make_garbage(url, seeded, untag, case.untagged))
    return seeded, freed + case.untagged


async def _migrate(url: str) -> None:
    store = await open_store(url)
    await store.close()


def distribution_layout(seeded: Seeded, root: Path) -> Path:
    """The same content in Distribution's layout under ``root``; its config file."""
    v2 = root / "docker" / "registry" / "v2"
    for path in (seeded.root / "blobs").rglob("data"):
        target = v2 / path.relative_to(seeded.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, target)

    def link(path: Path, digest: str) -> None:
        path.mkdir(parents=True, exist_ok=True)
        (path / "link").write_text(digest)

    for name, digests in seeded.links.items():
        repository = v2 / "repositories" / name
        for digest in digests:
            link(repository / "_layers" / "sha256" / digest[7:], digest)
        for digest, payload in seeded.revisions[name].items():
            _write_blob(v2, payload)
            link(repository / "_manifests" / "revisions" / "sha256" / digest[7:], digest)
        for tag, digest in seeded.tagged[name].items():
            link(repository / "_manifests" / "tags" / tag / "current", digest)
            link(repository / "_manifests" / "tags" / tag / "index" / "sha256" / digest[7:], digest)
    config = root.parent / "distribution.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "version": 0.1,
                "log": {"level": "error"},
                "storage": {
                    "filesystem": {"rootdirectory": str(root)},
                    "delete": {"enabled": True},
                },
            }
        )
    )
    return config


# -- measuring ----------------------------------------------------------------------------


class CountingStorage:
    """A filesystem driver that counts every call by operation."""

    def __init__(self, inner: FilesystemDriver) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: Counter[str] = Counter()

    async def get_content(self, path: str) -> bytes:
        self.calls["get_content"] += 1
        return await self.inner.get_content(path)

    async def put_content(self, path: str, data: bytes) -> None:
        self.calls["put_content"] += 1
        await self.inner.put_content(path, data)

    def reader(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        self.calls["reader"] += 1
        return self.inner.reader(path, offset, length)

    async def writer(self, path: str, offset: int = 0) -> StorageWriter:
        self.calls["writer"] += 1
        return await self.inner.writer(path, offset)

    async def stat(self, path: str) -> FileInfo:
        self.calls["stat"] += 1
        return await self.inner.stat(path)

    async def list(self, path: str) -> list[str]:
        self.calls["list"] += 1
        return await self.inner.list(path)

    async def move(self, source: str, destination: str) -> None:
        self.calls["move"] += 1
        await self.inner.move(source, destination)

    async def delete(self, path: str) -> None:
        self.calls["delete"] += 1
        await self.inner.delete(path)

    def walk(self, path: str) -> AsyncIterator[FileInfo]:
        self.calls["walk"] += 1
        return self.inner.walk(path)

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        self.calls["redirect_url"] += 1
        return None

    def local_path(self, path: str) -> str | None:
        return self.inner.local_path(path)


@contextlib.contextmanager
def _database_work(database: SqliteDatabase) -> Iterator[Counter[str]]:
    """Statements executed and SQLite VM steps (in units of ``VM_STEP_UNIT``) meanwhile."""
    work: Counter[str] = Counter()

    def progress() -> int:
        work["vm_units"] += 1
        return 0

    def checkout(dbapi_connection: Any, *_: Any) -> None:
        dbapi_connection.set_progress_handler(progress, VM_STEP_UNIT)

    def statement(*_: Any) -> None:
        work["statements"] += 1

    engines = (database.writer, database.reader)
    for engine in engines:
        event.listen(engine, "checkout", checkout)
        event.listen(engine, "before_cursor_execute", statement)
    try:
        yield work
    finally:
        for engine in engines:
            event.remove(engine, "checkout", checkout)
            event.remove(engine, "before_cursor_execute", statement)


async def _collect_in_process(seeded: Seeded, result: CaseResult) -> None:
    store = await open_store(f"sqlite:///{seeded.root / 'dockyard.db'}", migrate=False)
    try:
        database = store.database
        assert isinstance(database, SqliteDatabase)
        storage = CountingStorage(FilesystemDriver(str(seeded.root)))
        collector = Collector(GcStore(database), storage, 0.0, delete_untagged=True)
        with _database_work(database) as work:
            started = time.perf_counter()
            report = await collector.run()
            result.collect_seconds = time.perf_counter() - started
        result.storage_calls = dict(storage.calls)
        result.statements = work["statements"]
        result.vm_steps = work["vm_units"] * VM_STEP_UNIT
        if len(report.manifests) != result.case.untagged:
            result.errors.append(f"in process: {len(report.manifests)} manifests removed")
        if len(report.blobs) != result.garbage_blobs:
            result.errors.append(f"in process: {len(report.blobs)} blobs removed")
    finally:
        await store.close()


def _snapshot(database: Path, to: Path) -> None:
    source, target = sqlite3.connect(database), sqlite3.connect(to)
    with contextlib.closing(source), contextlib.closing(target):
        source.backup(target)


def _restore(seeded: Seeded, snapshot: Path) -> None:
    database = seeded.root / "dockyard.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(snapshot, database)
    for data in seeded.garbage_files.values():
        _write_blob(seeded.root, data)


_REMOVED = re.compile(r"removed (\d+) manifest\(s\), (\d+) blob\(s\)")


def _dockyard_gc(config: Path) -> tuple[float, int, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "DOCKYARD_"))}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "dockyard", "gc", "--delete-untagged", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=3600,
        check=False,
    )
    elapsed = time.perf_counter() - started
    found = _REMOVED.search(done.stdout.splitlines()[-1] if done.stdout else "")
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"dockyard gc failed: {done.stderr.strip()[-500:]}")
    return elapsed, int(found[1]), int(found[2])


def _count_blob_files(root: Path) -> int:
    return sum(1 for _ in root.rglob("data"))


def _distribution_gc(seeded: Seeded, work: Path, command: str, result: CaseResult) -> None:
    root = work / "distribution"
    config = distribution_layout(seeded, root)
    blobs_root = root / "docker" / "registry" / "v2"
    before = _count_blob_files(blobs_root / "blobs")
    started = time.perf_counter()
    done = subprocess.run(
        [*command.split(), "garbage-collect", "--delete-untagged", str(config)],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    result.distribution_seconds = time.perf_counter() - started
    if done.returncode != 0:
        result.distribution_error = (done.stderr or done.stdout).strip()[-300:]
        result.distribution_seconds = None
        return
    result.distribution_removed_blobs = before - _count_blob_files(blobs_root / "blobs")


def run_case(case: Case, work: Path, distribution: str | None) -> CaseResult:
    result = CaseResult(case)
    started = time.perf_counter()
    seeded, result.garbage_blobs = seed(work, case, random.Random(case.manifests))
    result.seed_seconds = time.perf_counter() - started
    result.repositories = len(seeded.links)
    result.blob_files = _count_blob_files(seeded.root / "blobs")
    _log(f"  seeded in {result.seed_seconds:.0f} s: {result.blob_files:,} blob files")
    if distribution is not None and case.distribution:
        _log("  distribution garbage-collect ...")
        _distribution_gc(seeded, work, distribution, result)
        shutil.rmtree(work / "distribution", ignore_errors=True)
    snapshot = work / "snapshot.db"
    _snapshot(seeded.root / "dockyard.db", snapshot)
    asyncio.run(_collect_in_process(seeded, result))
    _restore(seeded, snapshot)
    result.cli_seconds, manifests_gone, blobs_gone = _dockyard_gc(seeded.config)
    result.removed_manifests, result.removed_blobs = manifests_gone, blobs_gone
    if (manifests_gone, blobs_gone) != (case.untagged, result.garbage_blobs):
        result.errors.append(f"dockyard gc removed {manifests_gone} manifests, {blobs_gone} blobs")
    left = _count_blob_files(seeded.root / "blobs")
    if left != result.blob_files - result.garbage_blobs:
        result.errors.append(f"{left} blob files left")
    result.cli_idle_seconds, again, _ = _dockyard_gc(seeded.config)
    if again:
        result.errors.append("a second dockyard gc found more garbage")
    return result


def run_cases(
    cases: list[Case], workdir: Path | None, distribution: str | None
) -> list[CaseResult]:
    results = []
    for number, case in enumerate(cases, 1):
        _log(f"gc case {number}/{len(cases)}: {case.label}")
        with tempfile.TemporaryDirectory(prefix="gcbench-", dir=workdir) as work:
            results.append(run_case(case, Path(work), distribution))
        for error in results[-1].errors:
            _log(f"  ERROR {error}")
    return results


# -- report -------------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def render(results: list[CaseResult], header: list[str]) -> str:
    lines = ["# Garbage collection: Dockyard (online) vs CNCF Distribution (offline)", ""]
    lines += header
    lines += [
        "",
        "| Case | Repositories | Blob files | Garbage (manifests + blobs) | `dockyard gc` s "
        "| again, nothing left, s | Collection in process, s | Storage calls | SQL statements "
        "| SQLite VM steps | Distribution `garbage-collect` s | Distribution blobs removed |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        calls = ", ".join(f"{k} {v}" for k, v in sorted(r.storage_calls.items())) or "0"
        distribution = _seconds(r.distribution_seconds)
        if r.distribution_error:
            distribution = f"ERROR {r.distribution_error.splitlines()[-1][:80]}"
        lines.append(
            f"| {r.case.label} | {r.repositories:,} | {r.blob_files:,} "
            f"| {r.case.untagged:,} + {r.garbage_blobs:,} | {_seconds(r.cli_seconds)} "
            f"| {_seconds(r.cli_idle_seconds)} | {_seconds(r.collect_seconds)} | {calls} "
            f"| {r.statements:,} | {r.vm_steps:,} | {distribution} "
            f"| {'-' if r.distribution_removed_blobs is None else r.distribution_removed_blobs} |"
        )
    errors = [f"- {r.case.label}: {e}" for r in results for e in r.errors]
    if errors:
        lines += ["", "Errors:", *errors]
    return "\n".join(lines) + "\n"


def _filesystem(path: Path) -> str:
    """The type of the filesystem ``path`` is on, from the longest matching mount point."""
    best, kind = "", "unknown"
    with open("/proc/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            point = fields[1]
            inside = str(path).startswith(point.rstrip("/") + "/") or str(path) == point
            if inside and len(point) > len(best):
                best, kind = point, fields[2]
    return kind


def header_lines(workdir: Path | None = None) -> list[str]:
    where = (workdir or Path(tempfile.gettempdir())).resolve()
    return [
        f"- Registries written under {where} ({_filesystem(where)}): both collectors run on "
        "the same filesystem.",
        f"- {PER_REPOSITORY} images a repository; each image a unique config and layer and "
        "its repository's base layer; garbage: that share of the images untagged (each frees "
        "2 blobs) and as many loose blobs pushed and deleted.",
        "- `dockyard gc --delete-untagged` with `gc.grace: 0`, SQLite metadata, filesystem "
        "storage; its time includes starting the process. The in-process run counts every "
        "storage driver call, SQL statement, and SQLite VM instruction (rows examined).",
        "- Distribution 2.8.2: `docker-registry garbage-collect --delete-untagged` on the same "
        "blobs in its own layout (offline: the registry must be read-only meanwhile).",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--no-distribution", action="store_true", help="Dockyard only")
    parser.add_argument("--distribution-cmd", default="docker-registry")
    parser.add_argument("--output", type=Path, help="also write the Markdown report here")
    parser.add_argument("--json", type=Path, help="write every measurement here")
    parser.add_argument("--workdir", type=Path, help="parent of the temp dirs")
    args = parser.parse_args(argv)
    distribution = None if args.no_distribution else args.distribution_cmd
    if distribution is not None and shutil.which(distribution.split()[0]) is None:
        _log("docker-registry is missing (apt-get install docker-registry), or --no-distribution")
        return 2
    results = run_cases(QUICK_CASES if args.quick else CASES, args.workdir, distribution)
    text = render(results, header_lines(args.workdir))
    print(text)
    if args.output:
        args.output.write_text(text)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2, default=str))
    return 1 if any(r.errors or r.distribution_error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
