"""The UI's route table. Every path is spelled out (no catch-all mount at ``/``), so that
the registry's own paths, ``/v2/``, ``/token``, ``/api/`` and ``/debug``, are never shadowed
and keep their JSON errors. Repository names hold slashes, so what follows a repository
name comes after ``/-/``, which no name contains."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from dockyard.ui.pages import (
    account,
    admin,
    discover,
    new_repository,
    people,
    repository,
    repository_settings,
    tags,
    webhooks,
)
from dockyard.ui.web import page

__all__ = ["STATIC", "routes"]

STATIC = Path(__file__).parent / "static"
_REPO = "/r/{name:path}"
_ORG = "/u/{namespace}"


def routes() -> list[BaseRoute]:
    get, post = ["GET", "HEAD"], ["POST"]
    return [
        Route("/", page(discover.explore), methods=get),
        Route("/explore", page(discover.explore), methods=get),
        Route("/search", page(discover.search), methods=get),
        Route("/search/suggest", page(discover.suggest), methods=get),
        Route("/login", page(account.login_form), methods=get),
        Route("/login", page(account.login), methods=post),
        Route("/logout", page(account.logout), methods=post),
        Route("/signup", page(account.signup_form), methods=get),
        Route("/signup", page(account.signup), methods=post),
        Route("/settings/tokens", page(account.tokens), methods=get),
        Route("/settings/tokens", page(account.token_create), methods=post),
        Route("/settings/tokens/{token}/revoke", page(account.token_revoke), methods=post),
        Route("/admin/audit", page(admin.audit), methods=get),
        Route("/organizations/new", page(people.organization_form), methods=get),
        Route("/organizations/new", page(people.organization_create), methods=post),
        Route(_ORG, page(people.namespace), methods=get),
        Route(f"{_ORG}/members", page(people.member_set), methods=post),
        Route(f"{_ORG}/members/{{user}}/remove", page(people.member_remove), methods=post),
        Route(f"{_ORG}/teams", page(people.team_create), methods=post),
        Route(f"{_ORG}/teams/{{team}}/members", page(people.team_member_add), methods=post),
        Route(
            f"{_ORG}/teams/{{team}}/members/{{user}}/remove",
            page(people.team_member_remove),
            methods=post,
        ),
        Route("/new", page(new_repository.create_form), methods=get),
        Route("/new", page(new_repository.create), methods=post),
        Route(f"{_REPO}/-/tags/{{tag}}/delete", page(tags.tag_delete_form), methods=get),
        Route(f"{_REPO}/-/tags/{{tag}}/delete", page(tags.tag_delete), methods=post),
        Route(f"{_REPO}/-/tags/{{tag}}", page(tags.tag), methods=get),
        Route(f"{_REPO}/-/star", page(repository.star), methods=post),
        Route(f"{_REPO}/-/settings", page(repository_settings.settings), methods=get),
        Route(f"{_REPO}/-/settings", page(repository_settings.settings_update), methods=post),
        Route(f"{_REPO}/-/permissions", page(repository_settings.grant), methods=post),
        Route(f"{_REPO}/-/delete", page(repository_settings.delete), methods=post),
        Route(f"{_REPO}/-/webhooks", page(webhooks.webhooks_page), methods=get),
        Route(f"{_REPO}/-/webhooks", page(webhooks.webhook_create), methods=post),
        Route(
            f"{_REPO}/-/webhooks/{{webhook}}/toggle", page(webhooks.webhook_toggle), methods=post
        ),
        Route(
            f"{_REPO}/-/webhooks/{{webhook}}/delete", page(webhooks.webhook_delete), methods=post
        ),
        Route(_REPO, page(repository.repository), methods=get),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
