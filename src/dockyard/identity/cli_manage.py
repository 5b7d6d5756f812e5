"""Administrator commands for every management API operation: ``dockyard user`` (more of
it), ``org``, ``team``, ``repo`` and ``perm``, one module per group or pair of groups
(``cli_users``, ``cli_organizations``, ``cli_repositories``, ``cli_permissions``) over what
they share (``cli_hub``); :func:`register` adds them to the main command."""

from __future__ import annotations

import click

from dockyard.identity.cli_organizations import org, team
from dockyard.identity.cli_permissions import perm
from dockyard.identity.cli_repositories import repo
from dockyard.identity.cli_users import USER_COMMANDS

__all__ = ["register"]


def register(main: click.Group) -> None:
    user = main.commands.get("user")
    if isinstance(user, click.Group):
        for command in USER_COMMANDS:
            user.add_command(command)
    for group in (org, team, repo, perm):
        main.add_command(group)
