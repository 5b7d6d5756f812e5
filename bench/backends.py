"""The shared stores of ``--storage s3``: one S3-compatible server (moto's standalone server, in
a child process on a free port) that both registries store blobs in, each in a bucket of its
own, and throwaway PostgreSQL databases for Dockyard's metadata.

Each round gets fresh buckets and a fresh database (:func:`round_stores`); afterwards the
database is dropped and the S3 server forgets everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import boto3
import httpx
from botocore.config import Config as BotoConfig
from sqlalchemy.engine import make_url

from procs import cpu_seconds, parent_pid, pids_titled, tree_cpu_seconds

__all__ = [
    "DEFAULT_POSTGRES",
    "BackendError",
    "MotoServer",
    "Postgres",
    "S3Storage",
    "StoreCpu",
    "round_stores",
]

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
ACCESS_KEY = "bench-access"
SECRET_KEY = "bench-secret"
REGION = "us-east-1"
_START_TIMEOUT = 30.0


class BackendError(Exception):
    """A store could not be started or prepared."""


@dataclass(frozen=True, slots=True)
class S3Storage:
    """Where one registry keeps its blobs (and, for Dockyard, its metadata) in a round."""

    endpoint: str
    bucket: str
    database: str | None = None  # Dockyard's ``database.url``
    redirect: bool = True  # blob GETs answered with a 307 to a presigned URL

    def section(self) -> dict[str, Any]:
        """``storage.s3``, as both registries spell it."""
        return {
            "regionendpoint": self.endpoint,
            "forcepathstyle": True,
            "bucket": self.bucket,
            "region": REGION,
            "accesskey": ACCESS_KEY,
            "secretkey": SECRET_KEY,
            "secure": False,
            "v4auth": True,
        }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class MotoServer:
    """moto's S3-compatible server in a child process; a context manager."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.endpoint = ""
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def __enter__(self) -> MotoServer:
        # A free port may be taken before the server binds it: try another.
        for _ in range(3):
            port = _free_port()
            with self.log.open("ab") as log:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,  # it logs every request: a file, never a pipe
                )
            self.endpoint = f"http://127.0.0.1:{port}"
            if self._wait_ready():
                return self
            self._stop()
        tail = self.log.read_text(errors="replace")[-1500:]
        raise BackendError(f"moto server did not start:\n{tail}")

    def _wait_ready(self) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                httpx.get(self.endpoint, timeout=1)
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            return True
        return False

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def create_bucket(self, name: str) -> None:
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=BotoConfig(signature_version="s3v4", s3={"addressing_style": "path"}),
        )
        client.create_bucket(Bucket=name)

    def reset(self) -> None:
        """Forget every bucket and object (moto's own API)."""
        httpx.post(f"{self.endpoint}/moto-api/reset", timeout=60).raise_for_status()


class Postgres:
    """A PostgreSQL server on which throwaway databases are created and dropped."""

    def __init__(self, admin_url: str = DEFAULT_POSTGRES) -> None:
        self.admin_url = make_url(admin_url.replace("postgres://", "postgresql://", 1))

    def _admin(self, statement: str, then: Callable[[Any], Any] = lambda value: value) -> Any:
        """Run one statement; ``then`` of the first column of its first row, called while the
        connection is still open."""
        dsn = self.admin_url.set(drivername="postgresql").render_as_string(hide_password=False)

        async def run() -> Any:
            connection = await asyncpg.connect(dsn, timeout=10)
            try:
                return then(await connection.fetchval(statement))
            finally:
                await connection.close()

        return asyncio.run(run())

    def check(self) -> None:
        try:
            self._admin("SELECT 1")
        except (OSError, asyncpg.PostgresError) as exc:
            raise BackendError(f"PostgreSQL at {self.admin_url}: {exc}") from exc

    def postmaster(self) -> int | None:
        """The pid of the server's postmaster (the parent of every backend), if it runs on this
        machine where this process can see it."""
        # Read while the backend still lives.
        parent = self._admin("SELECT pg_backend_pid()", lambda pid: parent_pid(int(pid)))
        try:
            title = Path(f"/proc/{parent}/cmdline").read_bytes() if parent else b""
        except OSError:
            return None
        return parent if b"postgres" in title else None

    def create(self, name: str) -> str:
        """A new empty database; its URL."""
        self._admin(f'CREATE DATABASE "{name}"')
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def drop(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class StoreCpu:
    """CPU of the stores a registry drives: the S3 server, and the PostgreSQL backends that
    serve its database.

    Live backends are found by the title each sets. A backend that exits meanwhile (a
    connection pool that opens and closes connections under load) is gone by the second
    sample; its CPU then shows in the postmaster's time for reaped children, which is counted
    too. That time also holds the backends of other databases on the same server that exited
    meanwhile, so on a shared server the count errs high, against the registry measured.
    """

    def __init__(
        self, moto_pid: int, database_url: str | None = None, postmaster: int | None = None
    ) -> None:
        self.moto_pid = moto_pid
        name = None if database_url is None else make_url(database_url).database
        # "postgres: [cluster: ]user database host(port) state"
        self._title = (
            None if name is None else re.compile(rf"^postgres: (?:[^:]+: )?\S+ {re.escape(name)} ")
        )
        self._postmaster = postmaster if name is not None else None

    def sample(self) -> dict[int, float]:
        """CPU seconds by process: the S3 server, the postmaster with its reaped children, and
        each live backend of the database."""
        sample = {self.moto_pid: tree_cpu_seconds(self.moto_pid)}
        if self._postmaster is not None:
            sample[self._postmaster] = cpu_seconds(self._postmaster, reaped_children=True)
        if self._title is not None:
            sample.update({pid: cpu_seconds(pid) for pid in pids_titled(self._title)})
        return sample

    def spent(self, before: dict[int, float], after: dict[int, float]) -> float:
        """CPU seconds used between two samples. A process seen only in ``after`` started
        meanwhile and counts from zero. A backend seen only in ``before`` exited meanwhile: its
        whole time moved to the postmaster's reaped children, so only what it used after
        ``before`` counts (without a postmaster to see, what it used meanwhile is lost)."""
        used = sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
        if self._postmaster is not None:
            used -= sum(cpu for pid, cpu in before.items() if pid not in after)
        return used


@contextlib.contextmanager
def round_stores(
    moto: MotoServer, postgres: Postgres, number: int
) -> Iterator[tuple[S3Storage, S3Storage]]:
    """Fresh buckets for Dockyard and Distribution and a fresh database for Dockyard, for
    one round; dropped and forgotten afterwards."""
    token = secrets.token_hex(4)
    dockyard_bucket = f"dockyard-r{number}-{token}"
    distribution_bucket = f"distribution-r{number}-{token}"
    database = f"bench_dockyard_r{number}_{token}"
    moto.create_bucket(dockyard_bucket)
    moto.create_bucket(distribution_bucket)
    url = postgres.create(database)
    try:
        yield (
            S3Storage(moto.endpoint, dockyard_bucket, url),
            S3Storage(moto.endpoint, distribution_bucket),
        )
    finally:
        try:
            postgres.drop(database)
        finally:
            moto.reset()
