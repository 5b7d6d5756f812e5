"""The administrator's ``dockyard user`` commands (added to the group ``dockyard.cli``
defines): show, disable, enable, admin, password."""

from __future__ import annotations

import sys

import click

from dockyard.identity.cli import config_option
from dockyard.identity.cli_hub import fail, json_option, run, show

__all__ = ["USER_COMMANDS"]


@click.command("show")
@click.argument("name")
@json_option
@config_option
def user_show(name: str, as_json: bool, config: str | None) -> None:
    """Show the user NAME: name, admin, disabled, robot, created."""
    show(run(config, lambda hub: hub.get_user(name)), as_json)


@click.command("disable")
@click.argument("name")
@config_option
def user_disable(name: str, config: str | None) -> None:
    """Disable NAME: its passwords, tokens and sessions stop working."""
    run(config, lambda hub: hub.update_user(name, disabled=True))
    click.echo(f"disabled user {name}")


@click.command("enable")
@click.argument("name")
@config_option
def user_enable(name: str, config: str | None) -> None:
    """Enable NAME again."""
    run(config, lambda hub: hub.update_user(name, disabled=False))
    click.echo(f"enabled user {name}")


@click.command("admin")
@click.argument("name")
@click.option("--revoke", is_flag=True, help="Take the site administrator role away.")
@config_option
def user_admin(name: str, revoke: bool, config: str | None) -> None:
    """Make NAME a site administrator (or no longer, with --revoke)."""
    run(config, lambda hub: hub.update_user(name, is_admin=not revoke))
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
        fail("the password must not be empty")
    run(config, lambda hub: hub.change_password("", password, user=name))
    click.echo(f"set the password of {name}")


USER_COMMANDS = (user_show, user_disable, user_enable, user_admin, user_password)
