"""Quota admission against pushes that finish while it runs, on PostgreSQL.

In READ COMMITTED each statement sees what had committed when it started, so a push that
links its blob and drops its reservation in the middle of another push's admission must be
seen in one place or the other. The end-to-end race (``tests/e2e/test_lifecycle.py``) only
rarely lands in that gap; here the second admission is held at it.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import event

from dockyard.errors import QuotaExceeded
from dockyard.lifecycle.quotas import Quotas
from dockyard.lifecycle.service import LifecycleService
from dockyard.metadata.engine import AsyncDatabase, open_database
from dockyard.metadata.factory import open_store
from metadata.test_postgres import database_of

_WAIT = 30.0


def _digest(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def test_a_push_linked_during_an_admission_still_counts(tmp_path: Path) -> None:
    with database_of("postgresql", tmp_path, migrate=True) as url:
        assert asyncio.run(_race(url)) == ["refused"]


async def _race(url: str) -> list[str]:
    store = await open_store(url, migrate=False)
    await LifecycleService(store.database).set_quota("namespace", "ns", 1500)
    usage_read = threading.Event()
    first_done = threading.Event()
    outcome: list[str] = []

    def second_push() -> None:
        # A replica of its own: its engine, its event loop, its thread, so that holding it in
        # the middle of its admission holds nothing of the first push's.
        async def admit() -> None:
            database = open_database(url)
            assert isinstance(database, AsyncDatabase)

            def hold(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
                if "namespace_usage" in statement and not usage_read.is_set():
                    usage_read.set()
                    first_done.wait(_WAIT)

            event.listen(database.engine.sync_engine, "after_cursor_execute", hold)
            try:
                async with Quotas(database).admit("ns/b", _digest("b"), 1000):
                    outcome.append("admitted")
            except QuotaExceeded:
                outcome.append("refused")
            finally:
                await database.close()

        asyncio.run(admit())

    second = threading.Thread(target=second_push)
    try:
        async with Quotas(store.database).admit("ns/a", _digest("a"), 1000):
            second.start()
            assert await asyncio.to_thread(usage_read.wait, _WAIT)
            await store.link_blob("ns/a", _digest("a"), 1000)
        # Linked, and its reservation dropped: both committed while the second admission
        # is held after reading the usage.
        first_done.set()
        await asyncio.to_thread(second.join, _WAIT)
    finally:
        first_done.set()
        await store.close()
    return outcome
