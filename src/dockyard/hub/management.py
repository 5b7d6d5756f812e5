"""Management operations, each authorized for the principal acting: what the management API,
the administrator CLI and the web UI call.

Who may do what follows the registry's permission model (:mod:`dockyard.identity.policy`):

=======================================  ===============================================
site administrators                      anything
any user                                 read users and organizations; create
                                         organizations (owning them); manage its own
                                         password and tokens; see what it may pull
organization owners                      members, teams, default permission, robots, and
                                         grants on patterns inside the organization
organization members                     read the organization, its members and teams
repository admins                        visibility, description, grants on it, deletion
=======================================  ===============================================

Nobody learns that a private repository exists unless it may pull it: it is answered
:class:`~dockyard.errors.NameUnknown` exactly as one that does not exist. Robots act as
users but manage no passwords or tokens. Every change of users, memberships, permissions,
visibility, and every repository creation or deletion is written to the audit log.

Errors are the registry's (:mod:`dockyard.errors`): ``Denied``, ``NameUnknown``,
``ResourceUnknown``, ``Conflict``, ``RequestInvalid``, ``NameInvalid``, ``Unsupported``.
"""

from __future__ import annotations

from dockyard.hub.manage_audit import AuditManagement
from dockyard.hub.manage_base import ManagementSettings
from dockyard.hub.manage_organizations import OrganizationManagement
from dockyard.hub.manage_permissions import PermissionManagement
from dockyard.hub.manage_repositories import RepositoryManagement
from dockyard.hub.manage_robots import ROBOT_TOKEN, RobotManagement
from dockyard.hub.manage_teams import TeamManagement
from dockyard.hub.manage_tokens import TokenManagement
from dockyard.hub.manage_users import UserManagement
from dockyard.identity.base import Principal

__all__ = ["ROBOT_TOKEN", "Management", "ManagementSettings", "cli_principal"]


def cli_principal(name: str = "cli") -> Principal:
    """The site administrator the CLI acts as (``name`` is what the audit log shows)."""
    return Principal(name=name, is_admin=True, organizations={}, grants=())


class Management(
    UserManagement,
    OrganizationManagement,
    TeamManagement,
    RepositoryManagement,
    PermissionManagement,
    TokenManagement,
    RobotManagement,
    AuditManagement,
):
    """Management operations as ``actor`` (from ``IdentityStore.principal``, or
    :func:`cli_principal`), from ``client_address`` (for the audit log).

    Each concept's operations are in a module of its own (``manage_users``, ...,
    ``manage_audit``); what they share (the state, the audit log, the checks of who the actor
    is) is in :class:`~dockyard.hub.manage_base.ManagementBase`."""
