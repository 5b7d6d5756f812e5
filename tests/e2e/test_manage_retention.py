"""``auth.builtin.auditretention``: a running server purges audit events and failed-login
counters older than the retention, and keeps the rest."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from auth.builtin_setup import write_key
from dockyard.identity.base import AuditEvent, AuditFilter, IdentityStore
from dockyard.identity.sql import SqlIdentityStore
from dockyard.metadata.engine import open_database

from .conftest import DISTRIBUTION, RegistryServer, ServerFactory
from .manage_site import builtin_config

pytestmark = pytest.mark.skipif(DISTRIBUTION, reason="auth.builtin is Dockyard's own")

T = TypeVar("T")


def _identity(server: RegistryServer, work: Callable[[IdentityStore], Awaitable[T]]) -> T:
    async def run() -> T:
        database = open_database(f"sqlite:///{server.root / 'dockyard.db'}")
        try:
            return await work(SqlIdentityStore(database))
        finally:
            await database.close()

    return asyncio.run(run())


def test_old_audit_rows_are_purged(
    registry_factory: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    key = write_key(tmp_path_factory.mktemp("keys") / "signing.pem")
    config = builtin_config(key, auditretention="1h", auditpurgeinterval="1s")
    server = registry_factory(config)
    now = datetime.now(UTC)

    async def seed(store: IdentityStore) -> None:
        for age, name in ((timedelta(hours=3), "old"), (timedelta(minutes=1), "recent")):
            await store.add_audit_event(
                AuditEvent(time=now - age, action="test", outcome="success", detail=name)
            )
        await store.record_login_failure(
            ["account:x@-"], now - timedelta(hours=2), timedelta(minutes=15)
        )

    _identity(server, seed)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        left = _identity(server, lambda s: s.audit_page(AuditFilter(action="test")))
        if [r.event.detail for r in left] == ["recent"]:
            break
        time.sleep(0.5)
    assert [r.event.detail for r in left] == ["recent"]
    assert _identity(server, lambda s: s.login_failures(["account:x@-"])) == {}


def test_retention_must_be_a_duration(
    registry_factory: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import subprocess
    import sys

    import yaml

    key = write_key(tmp_path_factory.mktemp("keys") / "signing.pem")
    server = registry_factory(builtin_config(key, auditretention="forever"), run=False)
    server.config_path.write_text(yaml.safe_dump(server.config))
    done = subprocess.run(
        [sys.executable, "-m", "dockyard", "check-config", str(server.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "auth.builtin.auditretention" in done.stdout + done.stderr
