"""The ``dockyard token``, ``dockyard robot`` and ``dockyard audit`` commands (registered on
the main command by :func:`register`); the work is in :mod:`dockyard.identity.commands`."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, NoReturn, TypeVar

import click

__all__ = ["audit", "config_option", "register", "robot", "token"]

T = TypeVar("T")
FAILED = 1

config_option = click.option(
    "--config",
    "-c",
    "config",
    envvar="DOCKYARD_CONFIG",
    type=click.Path(dir_okay=False),
    help="The config file (default: $DOCKYARD_CONFIG, else built-in defaults).",
)


def _fail(message: str) -> NoReturn:
    click.echo(f"dockyard: {message}", err=True)
    sys.exit(FAILED)


def _run(config: str | None, work: Callable[[str], Coroutine[Any, Any, T]]) -> T:
    """``work`` on the database URL the config names; identity errors and database errors
    are one line on stderr and exit status 1."""
    from dockyard.cli import _database_failed, _database_url
    from dockyard.identity.base import IdentityError

    url = _database_url(config)
    try:
        return asyncio.run(work(url))
    except (IdentityError, ValueError) as error:
        _fail(str(error))
    except Exception as error:
        _database_failed(error)


def _when(moment: datetime | None) -> str:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else "-"


# -- dockyard token -----------------------------------------------------------------------------


@click.group()
def token() -> None:
    """Manage personal access tokens (used in place of a password to log in)."""


@token.command("create")
@click.argument("user")
@click.option("--name", required=True, help="A name for the token, unique for the user.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(["read", "write", "delete"]),
    help="read: pull; write: pull and push; delete: also delete. Repeatable.",
)
@click.option("--expires", help="Lifetime: e.g. 12h, 30d, 4w, 1y (default: never expires).")
@config_option
def token_create(
    user: str, name: str, scopes: tuple[str, ...], expires: str | None, config: str | None
) -> None:
    """Create a token for USER and print its secret (shown this once only)."""
    from dockyard.identity.base import TokenScope
    from dockyard.identity.commands import create_token
    from dockyard.identity.tokens import parse_lifetime

    try:
        lifetime = parse_lifetime(expires) if expires else None
    except ValueError as error:
        _fail(str(error))
    wanted = frozenset(TokenScope.parse(s) for s in scopes)
    created, secret = _run(config, lambda url: create_token(url, user, name, wanted, lifetime))
    click.echo(secret)
    click.echo(
        f"created token {created.name} for {created.user}, expires {_when(created.expires_at)}; "
        "this secret is not shown again",
        err=True,
    )


@token.command("list")
@click.argument("user")
@config_option
def token_list(user: str, config: str | None) -> None:
    """List USER's tokens: name, scopes, created, expires, last used."""
    from dockyard.identity.commands import list_tokens

    for listed in _run(config, lambda url: list_tokens(url, user)):
        scopes = ",".join(sorted(s.value for s in listed.scopes))
        click.echo(
            "\t".join(
                (
                    listed.name,
                    scopes,
                    _when(listed.created_at),
                    _when(listed.expires_at),
                    _when(listed.last_used_at),
                )
            )
        )


@token.command("revoke")
@click.argument("user")
@click.argument("name")
@config_option
def token_revoke(user: str, name: str, config: str | None) -> None:
    """Revoke USER's token NAME: it stops working at once."""
    from dockyard.identity.commands import revoke_token

    _run(config, lambda url: revoke_token(url, user, name))
    click.echo(f"revoked token {name} of {user}")


# -- dockyard robot -----------------------------------------------------------------------------


@click.group()
def robot() -> None:
    """Manage an organization's robot accounts (ORG+NAME, for CI), which log in with a token."""


@robot.command("create")
@click.argument("organization")
@click.argument("name")
@config_option
def robot_create(organization: str, name: str, config: str | None) -> None:
    """Create the robot ORGANIZATION+NAME and print its token (shown this once only). It may
    do nothing until granted permissions, like a user."""
    from dockyard.identity.commands import create_robot

    created, secret = _run(config, lambda url: create_robot(url, organization, name))
    click.echo(secret)
    click.echo(
        f"created robot {created.name}; log in as {created.name!r} with this token, "
        "which is not shown again",
        err=True,
    )


@robot.command("list")
@click.argument("organization")
@config_option
def robot_list(organization: str, config: str | None) -> None:
    """List the robots of ORGANIZATION: name, created."""
    from dockyard.identity.commands import list_robots

    for found in _run(config, lambda url: list_robots(url, organization)):
        click.echo(f"{found.name}\t{_when(found.created_at)}")


@robot.command("delete")
@click.argument("organization")
@click.argument("name")
@config_option
def robot_delete(organization: str, name: str, config: str | None) -> None:
    """Delete the robot ORGANIZATION+NAME, its token and its permissions."""
    from dockyard.identity.commands import delete_robot

    _run(config, lambda url: delete_robot(url, organization, name))
    click.echo(f"deleted robot {organization}+{name}")


# -- dockyard audit -----------------------------------------------------------------------------


def _since(text: str | None, option: str = "--since") -> datetime | None:
    """An ISO 8601 time (UTC if no zone is given) or a lifetime back from now (``24h``)."""
    if not text:
        return None
    from dockyard.identity.tokens import parse_moment

    try:
        return parse_moment(text)
    except ValueError:
        _fail(f"invalid {option} {text!r} (expected e.g. 24h, 7d or 2025-03-01T12:00:00Z)")


_since_option = click.option(
    "--since", help="Events at or after this: an ISO 8601 time, or e.g. 24h or 7d ago."
)
_actor_option = click.option("--actor", help="Only the events of this user.")
_until_option = click.option("--until", help="Events before this (as --since).")
_action_option = click.option("--action", help="Only this action (login, repository.create...).")
_repository_option = click.option("--repository", help="Only the events of this repository.")


def _filter(
    since: str | None,
    until: str | None,
    actor: str | None,
    action: str | None,
    repository: str | None,
) -> Any:
    from dockyard.identity.base import AuditFilter

    return AuditFilter(
        since=_since(since),
        until=_since(until, "--until"),
        actor=actor,
        action=action,
        repository=repository,
    )


def _filtered_events(config: str | None, where: Any) -> list[Any]:
    """Every event ``where`` selects, oldest first."""
    from dockyard.identity.commands import filtered_audit_events

    return _run(config, lambda url: filtered_audit_events(url, where))


@click.group()
def audit() -> None:
    """Read the audit log: logins, and token and robot changes."""


def _audit_query(command: Callable[[Any, str | None], None]) -> Callable[..., None]:
    """Gives an audit command the filter options and --config; it is called with the
    ``AuditFilter`` they make and the config path."""

    @functools.wraps(command)
    def filtered(
        since: str | None,
        until: str | None,
        actor: str | None,
        action: str | None,
        repository: str | None,
        config: str | None,
    ) -> None:
        command(_filter(since, until, actor, action, repository), config)

    decorated: Callable[..., None] = filtered
    # Innermost first, so that --help lists them in the order of the parameters.
    for option in (
        config_option,
        _repository_option,
        _action_option,
        _actor_option,
        _until_option,
        _since_option,
    ):
        decorated = option(decorated)
    return decorated


@audit.command("list")
@_audit_query
def audit_list(where: Any, config: str | None) -> None:
    """List events, oldest first: time, actor, client address, action, outcome, detail."""
    for event in _filtered_events(config, where):
        fields = (event.actor, event.client_address, event.action, event.outcome, event.detail)
        click.echo("\t".join([_when(event.time), *(f or "-" for f in fields)]))


@audit.command("export")
@_audit_query
def audit_export(where: Any, config: str | None) -> None:
    """Write events as JSON lines (one object per event, oldest first) to standard output."""
    from dockyard.identity.commands import audit_record

    for event in _filtered_events(config, where):
        click.echo(json.dumps(audit_record(event), sort_keys=True))


def register(main: click.Group) -> None:
    from dockyard.identity import cli_manage

    for group in (token, robot, audit):
        main.add_command(group)
    cli_manage.register(main)
