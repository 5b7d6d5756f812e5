"""Health checks that run in the background, each at its own interval, so that answering
``/debug/health`` (or refusing a request on a drained node) costs nothing per request.

Distribution's checks, from ``health``::

    storagedriver   the storage backend answers a listing of its root
    file            a file exists: the node is drained (create it to take a node out)
    http            a HEAD request answers the expected status
    tcp             a TCP connection opens

A check with a ``threshold`` of N reports a failure once N runs in a row have failed (0 counts
as 1); one success clears it. Until its first run a check counts as passing. Each worker
process runs its own checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Mapping, Sequence

from dockyard.config import HealthConfig, parse_tcp_address
from dockyard.metadata.base import MetadataStore
from dockyard.storage.base import PathNotFound, StorageDriver

__all__ = [
    "DEFAULT_INTERVAL",
    "HealthChecks",
    "PeriodicCheck",
    "Probe",
    "configured_checks",
    "database_probe",
    "file_probe",
    "http_probe",
    "storage_probe",
    "tcp_probe",
]

DEFAULT_INTERVAL = 10.0
"""Seconds between runs when ``interval`` is 0, as in Distribution."""
STORAGE_TIMEOUT = 10.0
START_WAIT = 1.0
"""Seconds start-up waits for the checks' first runs."""

Probe = Callable[[], Awaitable[None]]
"""Returns when the check passes; raises an exception whose text says why it fails."""

log = logging.getLogger("dockyard.health")


class CheckFailed(Exception):
    """A probe's verdict, with the message ``/debug/health`` shows."""


class PeriodicCheck:
    def __init__(self, name: str, probe: Probe, interval: float, threshold: int = 1) -> None:
        self.name = name
        self.probe = probe
        self.interval = interval if interval > 0 else DEFAULT_INTERVAL
        self.threshold = max(threshold, 1)
        self._failures = 0
        self._error: str | None = None
        self.ran = asyncio.Event()

    @property
    def failure(self) -> str | None:
        """Why the check fails, or None while it passes (or has not failed often enough)."""
        return self._error if self._failures >= self.threshold else None

    def record(self, error: str | None) -> None:
        was = self.failure
        if error is None:
            self._failures = 0
        elif self._failures < self.threshold:
            self._failures += 1
        self._error = error
        now = self.failure
        if now != was:
            if now is None:
                log.info("health check %s passes again", self.name)
            else:
                log.warning("health check %s fails: %s", self.name, now)

    async def run_once(self) -> None:
        try:
            await self.probe()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.record(str(exc) or type(exc).__name__)
        else:
            self.record(None)
        self.ran.set()

    async def run_forever(self) -> None:
        while True:
            await self.run_once()
            await asyncio.sleep(self.interval)


class HealthChecks:
    """A set of named checks and their background tasks."""

    def __init__(self, checks: Sequence[PeriodicCheck] = ()) -> None:
        self.checks = list(checks)
        self._tasks: list[asyncio.Task[None]] = []

    def failing(self, names: Sequence[str] | None = None) -> dict[str, str]:
        """Name -> reason for every failing check (of ``names``, when given)."""
        out = {}
        for check in self.checks:
            if names is not None and check.name not in names:
                continue
            reason = check.failure
            if reason is not None:
                out[check.name] = reason
        return out

    async def start(self) -> None:
        """Keep every check running at its interval. The first runs are awaited for a moment,
        so that a drained node (a file check) refuses its very first request."""
        for check in self.checks:
            self._tasks.append(asyncio.create_task(check.run_forever(), name=check.name))
        if self.checks:
            first = [asyncio.create_task(check.ran.wait()) for check in self.checks]
            _, pending = await asyncio.wait(first, timeout=START_WAIT)
            for waiter in pending:
                waiter.cancel()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


# Probes ------------------------------------------------------------------------------------


def storage_probe(storage: StorageDriver) -> Probe:
    async def probe() -> None:
        try:
            await asyncio.wait_for(storage.list(""), STORAGE_TIMEOUT)
        except PathNotFound:
            pass  # the backend answered; the root is created by the first push
        except TimeoutError:
            raise CheckFailed(f"no answer within {STORAGE_TIMEOUT:g}s") from None

    return probe


def database_probe(metadata: MetadataStore, timeout: float) -> Probe:
    async def probe() -> None:
        try:
            await asyncio.wait_for(metadata.list_repositories(1), timeout)
        except TimeoutError:
            raise CheckFailed(f"no answer within {timeout:g}s") from None

    return probe


def file_probe(path: str) -> Probe:
    absolute = os.path.abspath(path)

    async def probe() -> None:
        try:
            os.stat(absolute)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise CheckFailed(f"{absolute}: {exc.strerror}") from None
        raise CheckFailed("file exists")

    return probe


def http_probe(
    uri: str, status: int, timeout: float, headers: Mapping[str, Sequence[str]]
) -> Probe:
    flat = {name: ", ".join(values) for name, values in headers.items()}

    def head() -> int:
        request = urllib.request.Request(uri, method="HEAD", headers=flat)
        try:
            with urllib.request.urlopen(request, timeout=timeout or None) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    async def probe() -> None:
        try:
            got = await asyncio.to_thread(head)
        except (OSError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise CheckFailed(f"{uri}: error while checking: {reason}") from None
        if got != status:
            raise CheckFailed(f"{uri}: downstream service returned unexpected status: {got}")

    return probe


def tcp_probe(addr: str, timeout: float) -> Probe:
    async def probe() -> None:
        try:
            host, port = parse_tcp_address(addr)
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host or "localhost", port), timeout or None
            )
        except TimeoutError:
            raise CheckFailed(f"{addr}: connection failed: timed out") from None
        except (OSError, ValueError) as exc:
            raise CheckFailed(f"{addr}: connection failed: {exc}") from None
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    return probe


def configured_checks(
    health: HealthConfig, storage: StorageDriver, driver_name: str
) -> list[PeriodicCheck]:
    """The checks ``health`` asks for, named as Distribution names them."""
    checks = []
    driver = health.storagedriver
    if driver.enabled:
        checks.append(
            PeriodicCheck(
                f"storagedriver_{driver_name}",
                storage_probe(storage),
                driver.interval,
                driver.threshold,
            )
        )
    for file in health.file:
        checks.append(
            PeriodicCheck(file.file, file_probe(file.file), file.interval, file.threshold)
        )
    for http in health.http:
        probe = http_probe(http.uri, http.statuscode, http.timeout, http.headers)
        checks.append(PeriodicCheck(http.uri, probe, http.interval, http.threshold))
    for tcp in health.tcp:
        probe = tcp_probe(tcp.addr, tcp.timeout)
        checks.append(PeriodicCheck(tcp.addr, probe, tcp.interval, tcp.threshold))
    return checks
