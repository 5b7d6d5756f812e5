"""Pull counts and last pull times per tag, without a database write per pull.

A pull of a tag (manifest GET or HEAD by tag: what ``docker pull`` and containerd send to
resolve it) is counted in memory; the counts are written every second in one transaction,
and once more at shutdown (the loop is ``dockyard.batching``'s). Upserts add to the stored
counts, so every worker of every replica flushes its own. Pulls by digest are not attributed
to tags (a client that resolved the tag first was counted then).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Join, case
from sqlalchemy.engine import Connection

from dockyard.batching import Batcher
from dockyard.metadata.engine import Database
from dockyard.metadata.schema import manifests, repositories, tag_pulls, tags
from dockyard.metadata.sql_common import dialect_insert

__all__ = ["FLUSH_SECONDS", "PullRecorder", "tags_with_pulls"]

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


def _tx_flush(conn: Connection, counts: _Counts) -> None:
    insert: Any = dialect_insert(conn)(tag_pulls)
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


class PullRecorder(Batcher[_Counts]):
    """The core's ``PullSink``: counts in memory, written to the database in batches."""

    def __init__(
        self,
        database: Database,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        interval: float = FLUSH_SECONDS,
    ) -> None:
        super().__init__(interval, "pull counts", log)
        self._db = database
        self._clock = clock
        self._counts: _Counts = {}

    def record(self, repository: str, tag: str) -> None:
        key = (repository, tag)
        pulls, _ = self._counts.get(key, (0, None))
        self._counts[key] = (pulls + 1, self._clock())

    def _take(self) -> _Counts | None:
        counts, self._counts = self._counts, {}
        return counts or None

    def _put_back(self, batch: _Counts) -> None:
        for key, (pulls, last) in batch.items():
            newer, at = self._counts.get(key, (0, last))
            self._counts[key] = (pulls + newer, max(last, at))

    async def _write(self, batch: _Counts) -> None:
        await self._db.transaction(_tx_flush, batch)
