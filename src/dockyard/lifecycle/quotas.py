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
    live reservations, in one statement so that they come from one snapshot, refuses if the
    blob would not fit, and otherwise records a reservation of the blob's size. Two pushes at
    the quota's edge thus take turns, and the second sees the first's reservation. The
    reservation is dropped only after the link has committed (a push in between counts the
    bytes twice, which can only refuse, never exceed), and it expires by itself if the pushing
    process dies.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Exists,
    ScalarSelect,
    Select,
    and_,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
)
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


def _namespace_state(namespace: str, digest: str, now: datetime) -> Select[int, bool, int]:
    used = select(namespace_usage.c.bytes).where(namespace_usage.c.namespace == namespace)
    held = exists().where(
        namespace_blobs.c.namespace == namespace, namespace_blobs.c.digest == digest
    )
    return _state(used.scalar_subquery(), held, quota_reservations.c.namespace == namespace, now)


def _repository_state(repository: str, digest: str, now: datetime) -> Select[int, bool, int]:
    used = (
        select(repository_usage.c.bytes)
        .join(repositories, repositories.c.id == repository_usage.c.repository_id)
        .where(repositories.c.name == repository)
    )
    held = exists().where(
        repository_blobs.c.repository_id == repositories.c.id,
        repositories.c.name == repository,
        repository_blobs.c.digest == digest,
    )
    return _state(used.scalar_subquery(), held, quota_reservations.c.repository == repository, now)


def _state(
    used: ScalarSelect[int], held: Exists, reservations: ColumnElement[bool], now: datetime
) -> Select[int, bool, int]:
    """Usage, whether the blob is already counted, and the live reservations, in one
    statement: one snapshot. Read by separate statements in READ COMMITTED, a push's link and
    then its release could both commit between the read of the usage and that of the
    reservations, and its bytes would be in neither."""
    reserved = select(func.coalesce(func.sum(quota_reservations.c.size), 0)).where(
        reservations, quota_reservations.c.expires_at > now
    )
    return select(func.coalesce(used, 0), held, reserved.scalar_subquery())


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
            state = _namespace_state(namespace, digest, now)
        else:
            state = _repository_state(repository, digest, now)
        used_bytes, held, reserved_bytes = conn.execute(state).one()
        if held:
            continue  # already counted there: costs nothing
        used, reserved = int(used_bytes), int(reserved_bytes)  # PostgreSQL's sum is numeric
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
