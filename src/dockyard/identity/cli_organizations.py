"""The administrator's ``dockyard org`` (organizations and their members) and ``dockyard
team`` (an organization's teams) commands."""

from __future__ import annotations

import click

from dockyard.identity.cli import config_option
from dockyard.identity.cli_hub import json_option, run, show

__all__ = ["org", "team"]

_PERMISSIONS = click.Choice(["none", "read", "write", "admin"])


# -- dockyard org ---------------------------------------------------------------------------------


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
    result = run(
        config,
        lambda hub: hub.create_organization(
            name,
            owner=owner,
            default_permission=default_permission,  # type: ignore[arg-type]
        ),
    )
    show(result, as_json)


@org.command("show")
@click.argument("name")
@json_option
@config_option
def org_show(name: str, as_json: bool, config: str | None) -> None:
    """Show NAME: name, default permission, created."""
    show(run(config, lambda hub: hub.get_organization(name)), as_json)


@org.command("default-permission")
@click.argument("name")
@click.argument("permission", type=_PERMISSIONS)
@config_option
def org_default(name: str, permission: str, config: str | None) -> None:
    """Set what NAME's members may do on its repositories."""
    run(config, lambda hub: hub.set_default_permission(name, permission))  # type: ignore[arg-type]
    click.echo(f"members of {name} get {permission}")


@org.command("members")
@click.argument("name")
@json_option
@config_option
def org_members(name: str, as_json: bool, config: str | None) -> None:
    """List NAME's members: user, role."""
    show(run(config, lambda hub: hub.members(name)), as_json)


@org.command("member")
@click.argument("name")
@click.argument("user")
@click.option("--role", type=click.Choice(["owner", "member"]), default="member")
@config_option
def org_member(name: str, user: str, role: str, config: str | None) -> None:
    """Add USER to NAME, or change its role."""
    run(config, lambda hub: hub.set_member(name, user, role))  # type: ignore[arg-type]
    click.echo(f"{user} is {role} of {name}")


@org.command("remove-member")
@click.argument("name")
@click.argument("user")
@config_option
def org_remove_member(name: str, user: str, config: str | None) -> None:
    """Remove USER from NAME and its teams."""
    run(config, lambda hub: hub.remove_member(name, user))
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
    run(config, lambda hub: hub.create_team(organization, name))
    click.echo(f"created team {organization}/{name}")


@team.command("list")
@click.argument("organization")
@json_option
@config_option
def team_list(organization: str, as_json: bool, config: str | None) -> None:
    """List ORGANIZATION's teams: organization, name, members."""
    show(run(config, lambda hub: hub.teams(organization)), as_json)


@team.command("add")
@click.argument("organization")
@click.argument("name")
@click.argument("user")
@config_option
def team_add(organization: str, name: str, user: str, config: str | None) -> None:
    """Add USER (a member of ORGANIZATION) to the team NAME."""
    run(config, lambda hub: hub.add_team_member(organization, name, user))
    click.echo(f"added {user} to {organization}/{name}")


@team.command("remove")
@click.argument("organization")
@click.argument("name")
@click.argument("user")
@config_option
def team_remove(organization: str, name: str, user: str, config: str | None) -> None:
    """Remove USER from the team NAME."""
    run(config, lambda hub: hub.remove_team_member(organization, name, user))
    click.echo(f"removed {user} from {organization}/{name}")
