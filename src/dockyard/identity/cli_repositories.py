"""The administrator's ``dockyard repo`` commands: creating, showing, listing, changing and
deleting repositories."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from dockyard.identity.cli import config_option
from dockyard.identity.cli_hub import json_option, run, show

if TYPE_CHECKING:
    from dockyard.hub.management import Management

__all__ = ["repo"]

_VISIBILITY = click.Choice(["public", "private"])


@click.group()
def repo() -> None:
    """Manage repositories: visibility, description, deletion."""


@repo.command("create")
@click.argument("name")
@click.option("--visibility", type=_VISIBILITY, help="Default: auth.builtin.defaultvisibility.")
@click.option("--description")
@json_option
@config_option
def repo_create(
    name: str, visibility: str | None, description: str | None, as_json: bool, config: str | None
) -> None:
    """Create the (empty) repository NAME."""
    result = run(
        config,
        lambda hub: hub.create_repository(
            name,
            visibility=visibility,  # type: ignore[arg-type]
            description=description,
        ),
    )
    show(result, as_json)


@repo.command("show")
@click.argument("name")
@json_option
@config_option
def repo_show(name: str, as_json: bool, config: str | None) -> None:
    """Show NAME: name, namespace, official, visibility, description, created."""
    show(run(config, lambda hub: hub.get_repository(name)), as_json)


@repo.command("list")
@click.option("--namespace", help="Only the repositories of this namespace.")
@json_option
@config_option
def repo_list(namespace: str | None, as_json: bool, config: str | None) -> None:
    """List repositories (every page)."""

    async def every(hub: Management) -> list[Any]:
        shown: list[Any] = []
        after: str | None = None
        while True:
            page = await hub.list_repositories(after=after, limit=1000, namespace=namespace)
            shown += page.repositories
            if page.next is None:
                return shown
            after = page.next

    show(run(config, every), as_json)


@repo.command("set")
@click.argument("name")
@click.option("--visibility", type=_VISIBILITY)
@click.option("--description", help="An empty one clears it.")
@json_option
@config_option
def repo_set(
    name: str, visibility: str | None, description: str | None, as_json: bool, config: str | None
) -> None:
    """Change NAME's visibility or description."""
    result = run(
        config,
        lambda hub: hub.update_repository(
            name,
            visibility=visibility,  # type: ignore[arg-type]
            description=description,
        ),
    )
    show(result, as_json)


@repo.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@config_option
def repo_delete(name: str, yes: bool, config: str | None) -> None:
    """Delete NAME with its tags and manifests (garbage collection frees the bytes)."""
    if not yes:
        click.confirm(f"Delete {name} and everything in it?", abort=True)
    deleted = run(config, lambda hub: hub.delete_repository(name))
    click.echo(f"deleted {name} ({deleted} manifest(s))")
