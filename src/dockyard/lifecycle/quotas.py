"""Storage quotas: a limit on the blob bytes a namespace (or a repository) links.

Where the check happens
    Every byte a repository holds comes in through a link: an upload's completion, a
    monolithic upload, a mount. The size is known there, so that is where a quota is checked,
    before the bytes are moved under their digest; a refused upload's data is removed with its
    session, so nothing partial remains. A manifest PUT links nothing (its blobs must already
    be linked in the repository), so it adds no bytes and is not checked. Manifest payloads
    live in the database and are not counted.

What counts
    A namespace counts each digest once, however many of its repositories link it
    (``namespace_blobs``); a blob it already holds costs a push nothing. Counters are kept by
    triggers (see ``usage.py``).

Races
    Admission is check-and-reserve in one transaction that first locks the quota rows it
    checks (PostgreSQL ``FOR UPDATE``; SQLite serialises writers): it reads the usage plus the
    live reservations, refuses if the blob would not fit, and otherwise records a reservation
    of the blob's size. Two pushes at the quota's edge thus take turns, and the second sees the
    first's reservation. The reservation is dropped only after the link has committed (a push
    in between counts the bytes twice, which can only refuse, never exceed), and it expires by
    itself if the pushing process dies.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, bindparam, delete, exists, func, or_, select
from sqlalchemy.engine import Connection

from dockyard.errors import QuotaExceeded
from dockyard.lifecycle.patterns import namespace_of
from dockyard.metadata.engine import Database
from dockyard.metadata.schema import (
    namespace_blobs,
    namespace_usage,
    quota_reservations,
    quotas,
    repositories,
    repository_blobs,
    repository_usage,
)

__all__ = ["NAMESPACE", "REPOSITORY", "RESERVATION_SECONDS", "Quota", "Quotas"]

NAMESPACE = "namespace"
REPOSITORY = "repository"

# How long a reservation outlives a push that died between its check and its link.
RESERVATION_SECONDS = 900.0


@dataclass(frozen=True, slots=True)
class Quota:
    scope: str  # NAMESPACE or REPOSITORY
    name: str
    limit_bytes: int
    created_at: datetime


_APPLICABLE = select(quotas.c.scope, quotas.c.name, quotas.c.limit_bytes).where(
    or_(
        and_(quotas.c.scope == NAMESPACE, quotas.c.name == bindparam("namespace")),
        and_(quotas.c.scope == REPOSITORY, quotas.c.name == bindparam("repository")),
    )
)


def _reserved(conn: Connection, column: str, name: str, now: datetime) -> int:
    table = quota_reservations
    total = conn.execute(
        select(func.coalesce(func.sum(table.c.size), 0)).where(
            table.c[column] == name, table.c.expires_at > now
        )
    ).scalar_one()
    return int(total)


def _namespace_state(conn: Connection, namespace: str, digest: str) -> tuple[int, bool]:
    used = conn.execute(
        select(namespace_usage.c.bytes).where(namespace_usage.c.namespace == namespace)
    ).scalar_one_or_none()
    held = conn.execute(
        select(
            exists().where(
                namespace_blobs.c.namespace == namespace, namespace_blobs.c.digest == digest
            )
        )
    ).scalar_one()
    return int(used or 0), bool(held)


def _repository_state(conn: Connection, repository: str, digest: str) -> tuple[int, bool]:
    repository_id = conn.execute(
        select(repositories.c.id).where(repositories.c.name == repository)
    ).scalar_one_or_none()
    if repository_id is None:
        return 0, False
    used = conn.execute(
        select(repository_usage.c.bytes).where(repository_usage.c.repository_id == repository_id)
    ).scalar_one_or_none()
    held = conn.execute(
        select(
            exists().where(
                repository_blobs.c.repository_id == repository_id,
                repository_blobs.c.digest == digest,
            )
        )
    ).scalar_one()
    return int(used or 0), bool(held)


def _tx_reserve(
    conn: Connection, repository: str, digest: str, size: int, now: datetime, ttl: float
) -> str | None:
    namespace = namespace_of(repository)
    query = _APPLICABLE.order_by(quotas.c.scope, quotas.c.name)
    if conn.dialect.name == "postgresql":
        # Serialises admissions against the same quota until this transaction commits.
        query = query.with_for_update()
    rows = conn.execute(query, {"namespace": namespace, "repository": repository}).all()
    needed = False
    for row in rows:
        if row.scope == NAMESPACE:
            used, held = _namespace_state(conn, namespace, digest)
            column = "namespace"
        else:
            used, held = _repository_state(conn, repository, digest)
            column = "repository"
        if held:
            continue  # already counted there: costs nothing
        reserved = _reserved(conn, column, row.name, now)
        if used + reserved + size > row.limit_bytes:
            raise QuotaExceeded(
                message=(
                    f"storage quota exceeded: {row.scope} {row.name} uses {used + reserved} of "
                    f"{row.limit_bytes} bytes; this blob needs {size} more"
                ),
                detail={
                    "scope": row.scope,
                    "name": row.name,
                    "limit": row.limit_bytes,
                    "used": used + reserved,
                    "requested": size,
                },
            )
        needed = True
    if not needed:
        return None
    conn.execute(
        delete(quota_reservations).where(
            quota_reservations.c.namespace == namespace, quota_reservations.c.expires_at <= now
        )
    )
    reservation = str(uuid.uuid4())
    conn.execute(
        quota_reservations.insert().values(
            id=reservation,
            namespace=namespace,
            repository=repository,
            size=size,
            expires_at=now + timedelta(seconds=ttl),
        )
    )
    return reservation


def _tx_release(conn: Connection, reservation: str) -> None:
    conn.execute(delete(quota_reservations).where(quota_reservations.c.id == reservation))


class Quotas:
    """The core's ``QuotaGate`` (``dockyard.core.seams``) over the metadata database."""

    def __init__(self, database: Database, ttl: float = RESERVATION_SECONDS) -> None:
        self._db = database
        self._ttl = ttl

    @contextlib.asynccontextmanager
    async def admit(self, repository: str, digest: str, size: int) -> AsyncIterator[None]:
        # A read first: with no quota on the namespace or repository (the usual case) the
        # push takes no write transaction here.
        parameters = {"namespace": namespace_of(repository), "repository": repository}
        if not await self._db.read(_APPLICABLE, parameters):
            yield
            return
        now = datetime.now(UTC)
        reservation = await self._db.transaction(
            _tx_reserve, repository, digest, size, now, self._ttl
        )
        try:
            yield
        finally:
            if reservation is not None:
                await self._db.transaction(_tx_release, reservation)
