"""Storage used per repository and per namespace, and pulls per tag.

Exact and incremental: triggers on ``repository_blobs`` (migration 0007) add a blob's size to
its repository's counter when it is linked there (pushed or mounted) and take it off when it
is unlinked (a blob DELETE, or the garbage collector dropping a link no manifest needs); a
namespace counts each digest once, however many of its repositories link it. A query reads
counters, it scans nothing. A deleted manifest's blobs stay linked, and counted, until the
garbage collector has removed what nothing needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from dockyard.lifecycle.patterns import namespace_of
from dockyard.lifecycle.pulls import tags_with_pulls
from dockyard.lifecycle.quotas import NAMESPACE, REPOSITORY
from dockyard.metadata.engine import Database
from dockyard.metadata.schema import (
    manifests,
    namespace_usage,
    quotas,
    repositories,
    repository_usage,
    tag_pulls,
    tags,
)

__all__ = ["NamespaceUsage", "RepositoryUsage", "TagUsage", "read_usage"]


@dataclass(frozen=True, slots=True)
class TagUsage:
    tag: str
    digest: str
    pushed_at: datetime
    pulls: int
    last_pulled_at: datetime | None


@dataclass(frozen=True, slots=True)
class RepositoryUsage:
    repository: str
    bytes: int
    blobs: int
    quota: int | None = None
    tags: tuple[TagUsage, ...] = ()


@dataclass(frozen=True, slots=True)
class NamespaceUsage:
    namespace: str
    bytes: int
    blobs: int
    quota: int | None = None
    repositories: tuple[RepositoryUsage, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "bytes": self.bytes,
            "blobs": self.blobs,
            "quota": self.quota,
            "repositories": [
                {
                    "repository": r.repository,
                    "bytes": r.bytes,
                    "blobs": r.blobs,
                    "quota": r.quota,
                    "tags": [
                        {
                            "tag": t.tag,
                            "digest": t.digest,
                            "pushed_at": _iso(t.pushed_at),
                            "pulls": t.pulls,
                            "last_pulled_at": _iso(t.last_pulled_at),
                        }
                        for t in r.tags
                    ],
                }
                for r in self.repositories
            ],
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


async def _quotas(database: Database, scope: str) -> dict[str, int]:
    rows = await database.read(
        select(quotas.c.name, quotas.c.limit_bytes).where(quotas.c.scope == scope)
    )
    return {row.name: row.limit_bytes for row in rows}


async def _tags(database: Database, repository: str) -> tuple[TagUsage, ...]:
    query = (
        select(
            tags.c.name,
            manifests.c.digest,
            tags.c.updated_at,
            func.coalesce(tag_pulls.c.pulls, 0).label("pulls"),
            tag_pulls.c.last_pulled_at,
        )
        .select_from(tags_with_pulls())
        .where(repositories.c.name == repository)
        .order_by(tags.c.name)
    )
    return tuple(
        TagUsage(row.name, row.digest, row.updated_at, row.pulls, row.last_pulled_at)
        for row in await database.read(query)
    )


async def read_usage(
    database: Database,
    namespace: str | None = None,
    repository: str | None = None,
    with_tags: bool = False,
) -> list[NamespaceUsage]:
    """Usage of every namespace (or the one given, or the one holding ``repository``, then
    listing that repository only), each with its repositories; ``with_tags`` adds each
    repository's tags with their pull counts."""
    if repository is not None:
        namespace = namespace_of(repository)
    query = select(namespace_usage.c.namespace, namespace_usage.c.bytes, namespace_usage.c.blobs)
    if namespace is not None:
        query = query.where(namespace_usage.c.namespace == namespace)
    spaces = {row.namespace: row for row in await database.read(query.order_by("namespace"))}
    repo_query = select(
        repositories.c.name, repository_usage.c.bytes, repository_usage.c.blobs
    ).select_from(
        repositories.outerjoin(
            repository_usage, repository_usage.c.repository_id == repositories.c.id
        )
    )
    if repository is not None:
        repo_query = repo_query.where(repositories.c.name == repository)
    elif namespace is not None:
        repo_query = repo_query.where(
            (repositories.c.name == namespace)
            | repositories.c.name.startswith(namespace + "/", autoescape=True)
        )
    repos = await database.read(repo_query.order_by(repositories.c.name))
    namespace_quotas = await _quotas(database, NAMESPACE)
    repository_quotas = await _quotas(database, REPOSITORY)
    grouped: dict[str, list[RepositoryUsage]] = {}
    for row in repos:
        tag_usage = await _tags(database, row.name) if with_tags else ()
        grouped.setdefault(namespace_of(row.name), []).append(
            RepositoryUsage(
                row.name,
                int(row.bytes or 0),
                int(row.blobs or 0),
                repository_quotas.get(row.name),
                tag_usage,
            )
        )
    names = sorted(set(spaces) | set(grouped))
    if namespace is not None:
        names = [namespace]
    result = []
    for name in names:
        counted = spaces.get(name)
        result.append(
            NamespaceUsage(
                name,
                int(counted.bytes) if counted is not None else 0,
                int(counted.blobs) if counted is not None else 0,
                namespace_quotas.get(name),
                tuple(grouped.get(name, ())),
            )
        )
    return result
