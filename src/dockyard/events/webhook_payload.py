"""What a webhook receives: Docker Hub's webhook body for one tagged manifest push, read from
the push's outbox event, and its signature.

A payload is signed when the webhook has a secret: ``X-Dockyard-Signature-256`` holds
``sha256=`` and the hex HMAC-SHA256 of the body under the secret (as GitHub's
``X-Hub-Signature-256``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from dockyard.identity.base import Visibility
from dockyard.metadata.schema import readmes, repository_settings, stars

__all__ = ["SIGNATURE_HEADER", "Push", "parse_push", "payload", "repository_info", "sign"]

log = logging.getLogger("dockyard.events")

SIGNATURE_HEADER = "X-Dockyard-Signature-256"


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Push:
    event: str
    repository: str
    tag: str
    digest: str
    media_type: str
    pusher: str
    pushed_at: datetime
    base_url: str


def parse_push(body: str) -> Push | None:
    """The tagged push an event body tells of, else None."""
    try:
        event = json.loads(body)
        target = event.get("target", {})
        if event.get("action") != "push" or not target.get("tag") or not target.get("digest"):
            return None
        when = datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        # Skipped rather than retried for ever: it would hold up every later event.
        log.error("webhooks: skipping an unreadable event (%s): %.200s", error, body)
        return None
    url = str(target.get("url", ""))
    return Push(
        event=str(event["id"]),
        repository=str(target["repository"]),
        tag=str(target["tag"]),
        digest=str(target["digest"]),
        media_type=str(target.get("mediaType") or ""),
        pusher=str(event.get("actor", {}).get("name") or ""),
        pushed_at=when if when.tzinfo else when.replace(tzinfo=UTC),
        # The target's URL is the registry's base (http.host, else the request's) + /v2/...
        base_url=url.split("/v2/", 1)[0],
    )


def _split(repository: str) -> tuple[str, str]:
    """Docker Hub's namespace and name; single-component names are official (``library``)."""
    head, sep, rest = repository.partition("/")
    return (head, rest) if sep else ("library", repository)


def repository_info(conn: Connection, push: Push) -> dict[str, Any]:
    name = push.repository
    settings = conn.execute(
        select(
            repository_settings.c.visibility,
            repository_settings.c.created_at,
            repository_settings.c.description,
        ).where(repository_settings.c.repository == name)
    ).first()
    star_count = conn.execute(
        select(func.count()).select_from(stars).where(stars.c.repository == name)
    ).scalar_one()
    readme = conn.execute(select(readmes.c.markdown).where(readmes.c.repository == name)).first()
    namespace, short = _split(name)
    return {
        "comment_count": 0,
        "date_created": _epoch(settings.created_at) if settings else None,
        "description": (settings.description if settings else None) or "",
        "dockerfile": "",
        "full_description": readme.markdown if readme else "",
        "is_official": "/" not in name,
        "is_private": settings is None or settings.visibility != Visibility.PUBLIC.value,
        "is_trusted": False,
        "name": short,
        "namespace": namespace,
        "owner": namespace,
        "repo_name": name,
        "repo_url": f"{push.base_url}/r/{name}",
        "star_count": int(star_count),
        "status": "Active",
    }


def payload(push: Push, repository: dict[str, Any], webhook_id: int) -> str:
    """Docker Hub's webhook body for one push and webhook."""
    body = {
        # Docker Hub's callback validates a chain of hooks; here it names this webhook's
        # delivery history in the management API.
        "callback_url": f"{push.base_url}/api/v1/webhooks/{webhook_id}/deliveries",
        "push_data": {
            "images": [push.digest],
            "media_type": push.media_type,
            "pushed_at": _epoch(push.pushed_at),
            "pusher": push.pusher,
            "tag": push.tag,
        },
        "repository": repository,
    }
    return json.dumps(body, separators=(",", ":"))
