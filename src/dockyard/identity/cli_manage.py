"""Administrator commands for every management API operation: ``dockyard user`` (more of
it), ``org``, ``team``, ``repo`` and ``perm``. Each acts, as a site administrator, through
:class:`dockyard.hub.management.Management` on the database the config names, and audits
as the actor ``cli``. Output is tab-separated lines, or JSON with ``--json``."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from pydantic import BaseModel

from dockyard.identity.cli import config_option

__all__ = ["register"]

T = TypeVar("T")
FAILED = 1
CLI_ACTOR = "cli"

if TYPE_CHECKING:
    from dockyard.hub.management import Management


def _fail(message: str) -> NoReturn:
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


def _run(config: str | None, work: Callable[[Management], Awaitable[T]]) -> T:
    """``work`` on a hub; registry errors are one line on stderr and exit status 1."""
    from dockyard.errors import RegistryError

    try:
        return asyncio.run(_with_hub(config, work))
    except RegistryError as error:
        _fail(error.text if error.detail is None else f"{error.text}: {error.detail}")
    except SystemExit:
        raise
    except Exception as error:
        # The message only: a database URL may hold a password.
        _fail(f"{type(error).__name__}: {error}")


def _fields(item: BaseModel) -> list[str]:
    out = []
    for value in item.model_dump(mode="json").values():
        if isinstance(value, list):
            out.append(",".join(str(v) for v in value) or "-")
        else:
            out.append("-" if value is None else str(value))
    return out


def _show(result: Any, as_json: bool) -> None:
    items = result if isinstance(result, list) else [result]
    if as_json:
        dumped = [i.model_dump(mode="json") for i in items]
        click.echo(json.dumps(dumped if isinstance(result, list) else dumped[0], indent=2))
        return
    for item in items:
        click.echo("\t".join(_fields(item)))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


# -- dockyard user (added to the group cli.py defines) -------------------------------------------


@click.command("show")
@click.argument("name")
@json_option
@config_option
def user_show(name: str, as_json: bool, config: str | None) -> None:
    """Show the user NAME: name, admin, disabled, robot, created."""
    _show(_run(config, lambda hub: hub.get_user(name)), as_json)


@click.command("disable")
@click.argument("name")
@config_option
def user_disable(name: str, config: str | None) -> None:
    """Disable NAME: its passwords, tokens and sessions stop working."""
    _run(config, lambda hub: hub.update_user(name, disabled=True))
    click.echo(f"disabled user {name}")


@click.command("enable")
@click.argument("name")
@config_option
def user_enable(name: str, config: str | None) -> None:
    """Enable NAME again."""
    _run(config, lambda hub: hub.update_user(name, disabled=False))
    click.echo(f"enabled user {name}")


@click.command("admin")
@click.argument("name")
@click.option("--revoke", is_flag=True, help="Take the site administrator role away.")
@config_option
def user_admin(name: str, revoke: bool, config: str | None) -> None:
    """Make NAME a site administrator (or no longer, with --revoke)."""
    _run(config, lambda hub: hub.update_user(name, is_admin=not revoke))
    click.echo(f"{'revoked admin from' if revoke else 'made admin'} {name}")


@click.command("password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@config_option
def user_password(name: str, password_stdin: bool, config: str | None) -> None:
    """Set NAME's password (asks for it unless --password-stdin)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        _fail("the password must not be empty")
    _run(config, lambda hub: hub.change_password("", password, user=name))
    click.echo(f"set the password of {name}")


# -- dockyard org ---------------------------------------------------------------------------------

_PERMISSIONS = click.Choice(["none", "read", "write", "admin"])


@click.group()
def org() -> None:
    """Manage organizations and their members."""


@org.command("create")
@click.argument("name")
@click.option("--owner", required=True, help="The first owner (an existing user).")
@click.option("--default-permission", type=_PERMISSIONS, default="none", show_default=True)
@json_option
@config_option
def org_create(
    name: str, owner: str, default_permission: str, as_json: bool, config: str | None
) -> None:
    """Create the organization NAME owned by --owner."""
    result = _run(
        config,
        lambda hub: hub.create_organization(
            name,
            owner=owner,
            default_permission=default_permission,  # type: ignore[arg-type]
        ),
    )
    _show(result, as_json)


@org.command("show")
@click.argument("name")
@json_option
@config_option
def org_show(name: str, as_json: bool, config: str | None) -> None:
    """Show NAME: name, default permission, created."""
    _show(_run(config, lambda hub: hub.get_organization(name)), as_json)


@org.command("default-permission")
@click.argument("name")
@click.argument("permission", type=_PERMISSIONS)
@config_option
def org_default(name: str, permission: str, config: str | None) -> None:
    """Set what NAME's members may do on its repositories."""
    _run(config, lambda hub: hub.set_default_permission(name, permission))  # type: ignore[arg-type]
    click.echo(f"members of {name} get {permission}")


@org.command("members")
@click.argument("name")
@json_option
@config_option
def org_members(name: str, as_json: bool, config: str | None) -> None:
    """List NAME's members: user, role."""
    _show(_run(config, lambda hub: hub.members(name)), as_json)


@org.command("member")
@click.argument("name")
@click.argument("user")
@click.option("--role", type=click.Choice(["owner", "member"]), default="member")
@config_option
def org_member(name: str, user: str, role: str, config: str | None) -> None:
    """Add USER to NAME, or change its role."""
    _run(config, lambda hub: hub.set_member(name, user, role))  # type: ignore[arg-type]
    click.echo(f"{user} is {role} of {name}")


@org.command("remove-member")
@click.argument("name")
@click.argument("user")
@config_option
def org_remove_member(name: str, user: str, config: str | None) -> None:
    """Remove USER from NAME and its teams."""
    _run(config, lambda hub: hub.remove_member(name, user))
    click.echo(f"removed {user} from {name}")


# -- dockyard team --------------------------------------------------------------------------------


@click.group()
def team() -> None:
    """Manage an organization's teams."""


@team.command("create")
@click.argument("organization")
@click.argument("name")
@config_option
def team_create(organization: str, name: str, config: str | None) -> None:
    """Create the team NAME in ORGANIZATION."""
    _run(config, lambda hub: hub.create_team(organization, name))
    click.echo(f"created team {organization}/{name}")


@team.command("list")
@click.argument("organization")
@json_option
@config_option
def team_list(organization: str, as_json: bool, config: str | None) -> None:
    """List ORGANIZATION's teams: organization, name, members."""
    _show(_run(config, lambda hub: hub.teams(organization)), as_json)


@team.command("add")
@click.argument("organization")
@click.argument("name")
@click.argument("user")
@config_option
def team_add(organization: str, name: str, user: str, config: str | None) -> None:
    """Add USER (a member of ORGANIZATION) to the team NAME."""
    _run(config, lambda hub: hub.add_team_member(organization, name, user))
    click.echo(f"added {user} to {organization}/{name}")


@team.command("remove")
@click.argument("organization")
@click.argument("name")
@click.argument("user")
@config_option
def team_remove(organization: str, name: str, user: str, config: str | None) -> None:
    """Remove USER from the team NAME."""
    _run(config, lambda hub: hub.remove_team_member(organization, name, user))
    click.echo(f"removed {user} from {organization}/{name}")


# -- dockyard repo --------------------------------------------------------------------------------

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
    result = _run(
        config,
        lambda hub: hub.create_repository(
            name,
            visibility=visibility,  # type: ignore[arg-type]
            description=description,
        ),
    )
    _show(result, as_json)


@repo.command("show")
@click.argument("name")
@json_option
@config_option
def repo_show(name: str, as_json: bool, config: str | None) -> None:
    """Show NAME: name, namespace, official, visibility, description, created."""
    _show(_run(config, lambda hub: hub.get_repository(name)), as_json)


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

    _show(_run(config, every), as_json)


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
    result = _run(
        config,
        lambda hub: hub.update_repository(
            name,
            visibility=visibility,  # type: ignore[arg-type]
            description=description,
        ),
    )
    _show(result, as_json)


@repo.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@config_option
def repo_delete(name: str, yes: bool, config: str | None) -> None:
    """Delete NAME with its tags and manifests (garbage collection frees the bytes)."""
    if not yes:
        click.confirm(f"Delete {name} and everything in it?", abort=True)
    deleted = _run(config, lambda hub: hub.delete_repository(name))
    click.echo(f"deleted {name} ({deleted} manifest(s))")


# -- dockyard perm --------------------------------------------------------------------------------


@click.group()
def perm() -> None:
    """Grant and revoke permissions on repositories and patterns (acme/*, acme/**)."""


def _grant(pattern: str, user: str | None, team_name: str | None, permission: str) -> Any:
    from pydantic import ValidationError

    from dockyard.hub.models import GrantIn

    try:
        return GrantIn(
            pattern=pattern,
            user=user,
            team=team_name,
            permission=permission,  # type: ignore[arg-type]
        )
    except ValidationError as error:
        _fail(str(error).splitlines()[0])


_subject_options = (
    click.option("--user", help="Grant to this user (or robot)."),
    click.option("--team", "team_name", help="Grant to this team: ORGANIZATION/TEAM."),
)


def _with_subject(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(_subject_options):
        command = option(command)
    return command


@perm.command("grant")
@click.argument("pattern")
@click.argument("permission", type=click.Choice(["read", "write", "admin"]))
@_with_subject
@config_option
def perm_grant(
    pattern: str, permission: str, user: str | None, team_name: str | None, config: str | None
) -> None:
    """Grant PERMISSION on PATTERN to --user or --team."""
    grant = _grant(pattern, user, team_name, permission)
    _run(config, lambda hub: hub.grant(grant))
    click.echo(f"granted {permission} on {pattern} to {user or team_name}")


@perm.command("revoke")
@click.argument("pattern")
@_with_subject
@config_option
def perm_revoke(pattern: str, user: str | None, team_name: str | None, config: str | None) -> None:
    """Revoke what --user or --team was granted on PATTERN."""
    grant = _grant(pattern, user, team_name, "none")
    _run(config, lambda hub: hub.grant(grant))
    click.echo(f"revoked {pattern} from {user or team_name}")


@perm.command("list")
@click.option("--repository", help="Only the grants that cover this repository.")
@json_option
@config_option
def perm_list(repository: str | None, as_json: bool, config: str | None) -> None:
    """List grants: pattern, user, team, permission."""
    _show(_run(config, lambda hub: hub.grants(repository=repository)), as_json)


def register(main: click.Group) -> None:
    user = main.commands.get("user")
    if isinstance(user, click.Group):
        for command in (user_show, user_disable, user_enable, user_admin, user_password):
            user.add_command(command)
    for group in (org, team, repo, perm):
        main.add_command(group)
