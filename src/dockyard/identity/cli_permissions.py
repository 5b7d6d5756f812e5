"""The administrator's ``dockyard perm`` commands: granting, revoking and listing
permissions on repositories and patterns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from dockyard.identity.cli import config_option
from dockyard.identity.cli_hub import fail, json_option, run, show

__all__ = ["perm"]


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
        fail(str(error).splitlines()[0])


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
    run(config, lambda hub: hub.grant(grant))
    click.echo(f"granted {permission} on {pattern} to {user or team_name}")


@perm.command("revoke")
@click.argument("pattern")
@_with_subject
@config_option
def perm_revoke(pattern: str, user: str | None, team_name: str | None, config: str | None) -> None:
    """Revoke what --user or --team was granted on PATTERN."""
    grant = _grant(pattern, user, team_name, "none")
    run(config, lambda hub: hub.grant(grant))
    click.echo(f"revoked {pattern} from {user or team_name}")


@perm.command("list")
@click.option("--repository", help="Only the grants that cover this repository.")
@json_option
@config_option
def perm_list(repository: str | None, as_json: bool, config: str | None) -> None:
    """List grants: pattern, user, team, permission."""
    show(run(config, lambda hub: hub.grants(repository=repository)), as_json)
