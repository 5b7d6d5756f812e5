"""Pull counts and last pull times per tag, without a database write per pull.

A pull of a tag (manifest GET or HEAD by tag: what ``docker pull`` and containerd send to
resolve it) is counted in memory; a background task writes the counts every second in one
transaction, and once more at shutdown. Upserts add to the stored counts, so every worker
of every replica flushes its own. Pulls by digest are not attributed to tags (a client that
resolved the tag first was counted then).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Join, case
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from dockyard.metadata.engine import Database
from dockyard.metadata.schema import manifests, repositories, tag_pulls, tags

__all__ = ["FLUSH_SECONDS", "PullRecorder", "PullSink", "tags_with_pulls"]

FLUSH_SECONDS = 1.0

log = logging.getLogger("dockyard.lifecycle.pulls")

# (repository, tag) -> (pulls, last pull)
_Counts = dict[tuple[str, str], tuple[int, datetime]]


def tags_with_pulls() -> Join:
    """Tags joined to their repository and manifest, and to their pull counts where a pull
    was ever recorded (an outer join: ``tag_pulls`` columns are NULL for the others)."""
    return (
        tags.join(repositories, repositories.c.id == tags.c.repository_id)
        .join(manifests, manifests.c.id == tags.c.manifest_id)
        .outerjoin(
            tag_pulls,
            (tag_pulls.c.repository == repositories.c.name) & (tag_pulls.c.tag == tags.c.name),
        )
    )


class PullSink(Protocol):
    """What the core tells of each pull of a tag."""

    def record(self, repository: str, tag: str) -> None: ...


def _tx_flush(conn: Connection, counts: _Counts) -> None:
    insert: Any = (sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert)(tag_pulls)
    rows = [
        {"repository": repository, "tag": tag, "pulls": pulls, "last_pulled_at": last}
        for (repository, tag), (pulls, last) in sorted(counts.items())
    ]
    statement = insert.on_conflict_do_update(
        index_elements=["repository", "tag"],
        set_={
            "pulls": tag_pulls.c.pulls + insert.excluded.pulls,
            # Flushes of several workers may arrive out of order.
            "last_pulled_at": _later(conn, insert.excluded.last_pulled_at),
        },
    )
    conn.execute(statement, rows)


def _later(conn: Connection, new: Any) -> Any:
    return case((tag_pulls.c.last_pulled_at < new, new), else_=tag_pulls.c.last_pulled_at)


class PullRecorder:
    """A ``PullSink`` that batches in memory and flushes to the database."""

    def __init__(
        self, database: Database, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._db = database
        self._clock = clock
        self._counts: _Counts = {}

    def record(self, repository: str, tag: str) -> None:
        key = (repository, tag)
        pulls, _ = self._counts.get(key, (0, None))
        self._counts[key] = (pulls + 1, self._clock())

    async def flush(self) -> int:
        """Write what was counted since the last flush; how many tags it touched. Counts
        that fail to write are kept for the next flush."""
        counts, self._counts = self._counts, {}
        if not counts:
            return 0
        try:
            await self._db.transaction(_tx_flush, counts)
        except BaseException:
            for key, (pulls, last) in counts.items():
                newer, at = self._counts.get(key, (0, last))
                self._counts[key] = (pulls + newer, max(last, at))
            raise
        return len(counts)

    async def run(self, interval: float = FLUSH_SECONDS) -> None:
        """Flush every ``interval`` seconds until cancelled (then the caller flushes once
        more)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.flush()
            except Exception:
                log.exception("writing pull counts failed; will retry")
