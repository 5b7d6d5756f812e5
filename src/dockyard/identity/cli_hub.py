"""What the administrator commands (``dockyard user`` (more of it), ``org``, ``team``,
``repo``, ``perm``) share: each acts, as a site administrator, through
:class:`dockyard.hub.management.Management` on the database the config names, and audits as
the actor ``cli``. Output is tab-separated lines, or JSON with ``--json``."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from pydantic import BaseModel

__all__ = ["CLI_ACTOR", "fail", "json_option", "run", "show"]

T = TypeVar("T")
FAILED = 1
CLI_ACTOR = "cli"

if TYPE_CHECKING:
    from dockyard.hub.management import Management


def fail(message: str) -> NoReturn:
    click.echo(f"dockyard: {message}", err=True)
    sys.exit(FAILED)


async def _with_hub(config_path: str | None, work: Callable[[Management], Awaitable[T]]) -> T:
    from dockyard.cache.factory import open_cache
    from dockyard.config import ConfigError, read_config
    from dockyard.core.manifests import Manifests
    from dockyard.core.policy import Policy
    from dockyard.hub.content import CoreContent
    from dockyard.hub.management import Management, ManagementSettings, cli_principal
    from dockyard.identity.base import Visibility
    from dockyard.identity.sql import SqlIdentityStore
    from dockyard.metadata.base import MetadataStore
    from dockyard.metadata.cached import CachedMetadataStore
    from dockyard.metadata.factory import open_store

    try:
        config = read_config(config_path or None, os.environ).config
    except ConfigError as error:
        click.echo(str(error), err=True)
        sys.exit(2)
    if not config.database.url:
        os.makedirs(config.data_directory, exist_ok=True)
    builtin = config.auth.get("builtin") or {}
    visibility = Visibility(str(builtin.get("defaultvisibility") or "private").lower())
    store = await open_store(config.database_url)
    # Through the cache, when there is one, so that servers do not keep serving what went.
    cache = await open_cache(config.redis or None)
    try:
        metadata: MetadataStore = store if cache is None else CachedMetadataStore(store, cache)
        maintenance = config.storage.maintenance
        policy = Policy(
            delete_enabled=config.storage.delete.enabled,
            readonly=maintenance.readonly.enabled,
        )
        hub = Management(
            SqlIdentityStore(store.database),
            cli_principal(CLI_ACTOR),
            content=CoreContent(store.database, Manifests(metadata, policy), policy),
            settings=ManagementSettings(default_visibility=visibility),
        )
        return await work(hub)
    finally:
        await store.close()
        if cache is not None:
            await cache.close()


def run(config: str | None, work: Callable[[Management], Awaitable[T]]) -> T:
    """``work`` on a hub; registry errors are one line on stderr and exit status 1."""
    from dockyard.errors import RegistryError

    try:
        return asyncio.run(_with_hub(config, work))
    except RegistryError as error:
        fail(error.text if error.detail is None else f"{error.text}: {error.detail}")
    except SystemExit:
        raise
    except Exception as error:
        # The message only: a database URL may hold a password.
        fail(f"{type(error).__name__}: {error}")


def _fields(item: BaseModel) -> list[str]:
    out = []
    for value in item.model_dump(mode="json").values():
        if isinstance(value, list):
            out.append(",".join(str(v) for v in value) or "-")
        else:
            out.append("-" if value is None else str(value))
    return out


def show(result: Any, as_json: bool) -> None:
    items = result if isinstance(result, list) else [result]
    if as_json:
        dumped = [i.model_dump(mode="json") for i in items]
        click.echo(json.dumps(dumped if isinstance(result, list) else dumped[0], indent=2))
        return
    for item in items:
        click.echo("\t".join(_fields(item)))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
