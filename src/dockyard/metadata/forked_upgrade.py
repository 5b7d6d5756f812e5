"""The schema upgrade in a child process of its own.

``dockyard serve`` migrates before Granian forks the workers from it: run in that process, the
migration tooling (Alembic, Mako, the migration scripts: some 12 MiB) would stay loaded there
and be inherited by every worker, which never uses it. A forked child runs the upgrade and
reports back how it went.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing

__all__ = ["UpgradeDied", "upgrade_in_child"]


class UpgradeDied(Exception):
    """The child process ended before it reported back."""


def upgrade_in_child(url: str) -> tuple[bool, str] | None:
    """Migrate the database at ``url`` in a forked child: None when done, else whether the
    database was out of reach and why. Raises :class:`UpgradeDied`."""
    fork = multiprocessing.get_context("fork")
    try:
        with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=fork) as child:
            return child.submit(_upgrade, url).result()
    except concurrent.futures.process.BrokenProcessPool:
        raise UpgradeDied from None


def _upgrade(url: str) -> tuple[bool, str] | None:
    """The child's part. The message, not a traceback: the URL may hold a password."""
    from dockyard.metadata import migrate
    from dockyard.metadata.engine import DatabaseUnavailable, describe

    try:
        asyncio.run(migrate.upgrade(url))
    except DatabaseUnavailable as exc:
        return True, str(exc)
    except Exception as exc:
        return False, describe(exc)
    return None
