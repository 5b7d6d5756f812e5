"""Retention policies: which tags of a repository to keep, and removing the others.

A policy applies to the repositories its ``repository_pattern`` matches and governs their tags
that ``tag_pattern`` matches; tags it does not govern are left alone. A governed tag is kept
when any of these holds, and removed otherwise:

- it is among the ``keep_last`` most recently pushed governed tags;
- it was pushed, or pulled, within ``keep_within`` seconds;
- it matches ``keep_pattern`` (always kept);
- an immutability rule covers it (such tags are never removed).

When several policies govern a tag, it is removed only if none of them keeps it. Only tags
are removed: the manifests they leave untagged become garbage-collection candidates (removed
when ``gc.deleteuntagged`` is on), and their bytes go with the next collection.

A removal is conditional on the tag still naming the manifest, and having been pushed, as
decided: a push that moves the tag meanwhile wins. Each removal is recorded in the audit log
(action ``retention.delete``) in the transaction that removes the tag.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from dockyard.lifecycle.immutable import IMMUTABLE_MARKER, ImmutableRule
from dockyard.lifecycle.patterns import matches
from dockyard.lifecycle.pulls import tags_with_pulls
from dockyard.metadata.engine import Database
from dockyard.metadata.gc import enqueue_manifests
from dockyard.metadata.schema import (
    audit_events,
    manifests,
    repositories,
    tag_pulls,
    tags,
)

__all__ = [
    "RETENTION_ACTION",
    "RETENTION_JOB",
    "Removal",
    "RetentionPolicy",
    "RetentionReport",
    "TagFacts",
    "apply_retention",
    "select_removals",
]

RETENTION_JOB = "retention"
RETENTION_ACTION = "retention.delete"

log = logging.getLogger("dockyard.lifecycle.retention")

Changed = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    id: int
    repository_pattern: str
    tag_pattern: str = "*"
    keep_last: int | None = None
    keep_within: float | None = None  # seconds
    keep_pattern: str | None = None
    created_at: datetime | None = None

    def governs(self, repository: str, tag: str) -> bool:
        return matches(self.repository_pattern, repository) and matches(self.tag_pattern, tag)


@dataclass(frozen=True, slots=True)
class TagFacts:
    repository: str
    tag: str
    repository_id: int
    manifest_id: int
    digest: str
    pushed_at: datetime
    last_pulled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Removal:
    repository: str
    tag: str
    digest: str
    policies: tuple[int, ...]


@dataclass
class RetentionReport:
    dry_run: bool
    removed: list[Removal] = field(default_factory=list)
    # Tags a policy governed and kept.
    kept: int = 0
    # Tags whose removal lost to a concurrent push or an immutability rule.
    skipped: int = 0


def select_removals(
    policies: Sequence[RetentionPolicy],
    repository_tags: Sequence[TagFacts],
    now: datetime,
    immutable: Sequence[ImmutableRule] = (),
) -> tuple[list[Removal], int]:
    """The tags of one repository that the policies remove, and how many governed tags they
    keep. Pure: no I/O."""
    keep: set[str] = set()
    doomed: dict[str, list[int]] = {}
    for policy in policies:
        governed = [t for t in repository_tags if policy.governs(t.repository, t.tag)]
        if not governed:
            continue
        kept: set[str] = set()
        if policy.keep_last:
            newest = sorted(governed, key=lambda t: (t.pushed_at, t.tag), reverse=True)
            kept.update(t.tag for t in newest[: policy.keep_last])
        if policy.keep_within is not None:
            since = now - timedelta(seconds=policy.keep_within)
            kept.update(
                t.tag
                for t in governed
                if t.pushed_at >= since
                or (t.last_pulled_at is not None and t.last_pulled_at >= since)
            )
        if policy.keep_pattern is not None:
            pattern = policy.keep_pattern
            kept.update(t.tag for t in governed if matches(pattern, t.tag))
        kept.update(
            t.tag for t in governed if any(r.covers(t.repository, t.tag) for r in immutable)
        )
        keep.update(kept)
        for t in governed:
            if t.tag not in kept:
                doomed.setdefault(t.tag, []).append(policy.id)
    by_tag = {t.tag: t for t in repository_tags}
    removals = [
        Removal(by_tag[tag].repository, tag, by_tag[tag].digest, tuple(ids))
        for tag, ids in sorted(doomed.items())
        if tag not in keep
    ]
    return removals, len(keep)


async def _repository_tags(database: Database, repository_ids: Iterable[int]) -> list[TagFacts]:
    query = (
        select(
            repositories.c.name.label("repository"),
            tags.c.name.label("tag"),
            tags.c.repository_id,
            tags.c.manifest_id,
            manifests.c.digest,
            tags.c.updated_at,
            tag_pulls.c.last_pulled_at,
        )
        .select_from(tags_with_pulls())
        .where(tags.c.repository_id.in_(list(repository_ids)))
        .order_by(repositories.c.name, tags.c.name)
    )
    return [
        TagFacts(
            row.repository,
            row.tag,
            row.repository_id,
            row.manifest_id,
            row.digest,
            row.updated_at,
            row.last_pulled_at,
        )
        for row in await database.read(query)
    ]


def _tx_remove(conn: Connection, facts: TagFacts, removal: Removal, now: datetime) -> bool:
    deleted = conn.execute(
        delete(tags).where(
            tags.c.repository_id == facts.repository_id,
            tags.c.name == facts.tag,
            tags.c.manifest_id == facts.manifest_id,
            tags.c.updated_at == facts.pushed_at,
        )
    ).rowcount
    if not deleted:
        return False
    enqueue_manifests(conn, facts.repository_id, [facts.digest], now)
    # A tag pushed again later starts counting its pulls afresh.
    conn.execute(
        delete(tag_pulls).where(
            tag_pulls.c.repository == facts.repository, tag_pulls.c.tag == facts.tag
        )
    )
    conn.execute(
        audit_events.insert().values(
            time=now,
            actor="retention",
            client_address=None,
            action=RETENTION_ACTION,
            outcome="success",
            repository=facts.repository,
            digest=facts.digest,
            tag=facts.tag,
            detail="policies " + ",".join(str(p) for p in removal.policies),
        )
    )
    return True


async def apply_retention(
    database: Database,
    policies: Sequence[RetentionPolicy],
    immutable: Sequence[ImmutableRule],
    dry_run: bool = False,
    changed: Changed | None = None,
    batch: int = 200,
) -> RetentionReport:
    """Apply ``policies`` to every repository they match (nothing written in a dry run)."""
    report = RetentionReport(dry_run)
    if not policies:
        return report
    now = datetime.now(UTC)
    rows = await database.read(select(repositories.c.id, repositories.c.name))
    matched = [
        (row.id, row.name)
        for row in rows
        if any(matches(p.repository_pattern, row.name) for p in policies)
    ]
    for start in range(0, len(matched), batch):
        chunk = matched[start : start + batch]
        facts = await _repository_tags(database, [repository_id for repository_id, _ in chunk])
        for repository_id, name in chunk:
            own = [t for t in facts if t.repository_id == repository_id]
            applicable = [p for p in policies if matches(p.repository_pattern, name)]
            removals, kept = select_removals(applicable, own, now, immutable)
            report.kept += kept
            by_tag = {t.tag: t for t in own}
            touched = False
            for removal in removals:
                if dry_run:
                    report.removed.append(removal)
                    continue
                try:
                    done = await database.transaction(_tx_remove, by_tag[removal.tag], removal, now)
                except Exception as error:
                    if IMMUTABLE_MARKER not in str(error):
                        raise
                    done = False  # a rule added since the rules were read
                if done:
                    report.removed.append(removal)
                    touched = True
                else:
                    report.skipped += 1
            if touched and changed is not None:
                await changed(name)
    return report
