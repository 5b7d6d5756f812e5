"""Repository webhooks: create, list, change and delete them, and read their delivery history.

Only a repository's admins (its namespace's owners, site administrators, and whoever was
granted ``admin`` on it) see or change its webhooks. A repository the caller may not see is
``NAME_UNKNOWN``, and a webhook on one is ``NOT_FOUND``, exactly as if absent. Secrets are
written, never read back (``secret_set`` tells whether one is set). Switching a webhook
off gives up its pending deliveries (they end ``failed``). Deliveries are made by
:mod:`dockyard.events.webhooks`, which also documents the signature header.

A URL must be ``http`` or ``https`` with a host. With ``hub.webhooks.allowprivate`` off, a
literal loopback, private or reserved address is refused here already; names are checked
when each delivery connects.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from dockyard.config.models import WebhooksConfig
from dockyard.errors import Conflict, Denied, NameUnknown, RequestInvalid, ResourceUnknown
from dockyard.events.webhook_address import address_allowed
from dockyard.events.webhook_payload import SIGNATURE_HEADER
from dockyard.hub.management import Management
from dockyard.metadata.engine import Database
from dockyard.metadata.schema import webhook_attempts, webhook_deliveries, webhooks

__all__ = [
    "MAX_HISTORY",
    "AttemptOut",
    "DeliveryOut",
    "DeliveryState",
    "WebhookCreate",
    "WebhookOut",
    "WebhookUpdate",
    "Webhooks",
    "check_url",
]

MAX_URL = 2048
MAX_HISTORY = 500

WebhookName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]
Url = Annotated[str, Field(min_length=1, max_length=MAX_URL)]
Secret = Annotated[str, Field(max_length=255)]
DeliveryState = Literal["pending", "delivered", "failed"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Response(BaseModel):
    model_config = ConfigDict(frozen=True)


class WebhookCreate(_Request):
    repository: str = Field(min_length=1, max_length=255)
    name: WebhookName
    url: Url = Field(description="An http or https URL.")
    secret: Secret | None = Field(
        default=None,
        description=f"Signs each payload: header `{SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 "
        "of the body under the secret>`.",
    )
    active: bool = True


class WebhookUpdate(_Request):
    """Fields left out are left as they are; an empty ``secret`` removes the secret."""

    name: WebhookName | None = None
    url: Url | None = None
    secret: Secret | None = None
    active: bool | None = None


class WebhookOut(_Response):
    id: int
    repository: str
    name: str
    url: str
    active: bool
    secret_set: bool = Field(description=f"Whether payloads carry `{SIGNATURE_HEADER}`.")
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class AttemptOut(_Response):
    attempt: int
    time: datetime
    response_code: int | None = Field(description="None when no answer came.")
    error: str | None
    duration_ms: int


class DeliveryOut(_Response):
    id: int
    webhook: int
    event: str = Field(description="The id of the registry event (the same for every webhook).")
    created_at: datetime
    state: DeliveryState
    attempts: int
    response_code: int | None = Field(description="Of the last attempt.")
    next_attempt_at: datetime | None
    finished_at: datetime | None
    payload: dict[str, Any] = Field(description="What is POSTed: Docker Hub's webhook format.")
    history: list[AttemptOut] = Field(description="Every attempt, first to last.")


def check_url(url: str, *, allow_private: bool) -> str:
    """``url`` if a webhook may be sent there, else ``RequestInvalid`` saying why."""
    shown = url[:200]
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise RequestInvalid(message=f"webhook URL {shown!r} contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise RequestInvalid(message=f"invalid webhook URL {shown!r}: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise RequestInvalid(
            message=f"webhook URL {shown!r} must start with http:// or https://",
            detail={"field": "url"},
        )
    host = parts.hostname
    if not host:
        raise RequestInvalid(message=f"webhook URL {shown!r} has no host", detail={"field": "url"})
    if port == 0:
        raise RequestInvalid(message=f"webhook URL {shown!r} has port 0", detail={"field": "url"})
    if not allow_private:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return url  # a name: checked at each delivery, when it is resolved
        if not address_allowed(address):
            raise RequestInvalid(
                message=f"webhook URL {shown!r} points at a loopback, private or reserved "
                "address (allowed only with hub.webhooks.allowprivate)",
                detail={"field": "url"},
            )
    return url


def _webhook_out(row: Any) -> WebhookOut:
    return WebhookOut(
        id=row.id,
        repository=row.repository,
        name=row.name,
        url=row.url,
        active=bool(row.active),
        secret_set=bool(row.secret),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


_COLUMNS = (
    webhooks.c.id,
    webhooks.c.repository,
    webhooks.c.name,
    webhooks.c.url,
    webhooks.c.secret,
    webhooks.c.active,
    webhooks.c.created_by,
    webhooks.c.created_at,
    webhooks.c.updated_at,
)


def _tx_create(conn: Connection, values: dict[str, Any]) -> Any:
    created = conn.execute(insert(webhooks).values(**values).returning(*_COLUMNS))
    return created.one()


def _tx_update(conn: Connection, webhook: int, values: dict[str, Any]) -> Any:
    changed = conn.execute(
        update(webhooks).where(webhooks.c.id == webhook).values(**values).returning(*_COLUMNS)
    )
    if values.get("active") is False:
        # Given up on: sent later, when switched on again, they would tell of old pushes.
        conn.execute(
            update(webhook_deliveries)
            .where(
                webhook_deliveries.c.webhook_id == webhook,
                webhook_deliveries.c.state == "pending",
            )
            .values(state="failed", next_attempt_at=None, finished_at=values["updated_at"])
        )
    return changed.first()


def _tx_delete(conn: Connection, webhook: int) -> None:
    conn.execute(delete(webhooks).where(webhooks.c.id == webhook))


class Webhooks:
    """The webhooks of repositories, each call authorized for ``hub``'s actor."""

    def __init__(
        self,
        database: Database,
        settings: WebhooksConfig,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._db = database
        self.settings = settings
        self._clock = clock

    async def _administered(self, hub: Management, repository: str) -> str:
        found = await hub.get_repository(repository)  # NAME_UNKNOWN unless visible
        if found.permission != "admin":
            raise Denied(message=f"only admins of {repository[:255]!r} may manage its webhooks")
        return found.name

    async def _webhook(self, hub: Management, webhook: int) -> Any:
        rows = await self._db.read(select(*_COLUMNS).where(webhooks.c.id == webhook))
        unknown = ResourceUnknown(message=f"no webhook {webhook}")
        if not rows:
            raise unknown
        try:
            await self._administered(hub, rows[0].repository)
        except NameUnknown:
            raise unknown from None
        return rows[0]

    async def _audit(self, hub: Management, action: str, repository: str, detail: str) -> None:
        await hub.record_action(action, detail, repository=repository, time=self._clock())

    async def create(self, hub: Management, spec: WebhookCreate) -> WebhookOut:
        repository = await self._administered(hub, spec.repository)
        url = check_url(spec.url, allow_private=self.settings.allowprivate)
        now = self._clock()
        values = {
            "repository": repository,
            "name": spec.name,
            "url": url,
            "secret": spec.secret or None,
            "active": spec.active,
            "created_by": hub.actor.name,
            "created_at": now,
            "updated_at": now,
        }
        try:
            row = await self._db.transaction(_tx_create, values)
        except IntegrityError:
            raise Conflict(
                message=f"{repository!r} already has a webhook named {spec.name!r}"
            ) from None
        await self._audit(hub, "webhook.create", repository, f"{row.id} {spec.name} -> {url}")
        return _webhook_out(row)

    async def of_repository(self, hub: Management, repository: str) -> list[WebhookOut]:
        name = await self._administered(hub, repository)
        rows = await self._db.read(
            select(*_COLUMNS).where(webhooks.c.repository == name).order_by(webhooks.c.id)
        )
        return [_webhook_out(row) for row in rows]

    async def get(self, hub: Management, webhook: int) -> WebhookOut:
        return _webhook_out(await self._webhook(hub, webhook))

    async def update(self, hub: Management, webhook: int, spec: WebhookUpdate) -> WebhookOut:
        before = await self._webhook(hub, webhook)
        values: dict[str, Any] = {"updated_at": self._clock()}
        if spec.name is not None:
            values["name"] = spec.name
        if spec.url is not None:
            values["url"] = check_url(spec.url, allow_private=self.settings.allowprivate)
        if spec.secret is not None:
            values["secret"] = spec.secret or None
        if spec.active is not None:
            values["active"] = spec.active
        try:
            row = await self._db.transaction(_tx_update, webhook, values)
        except IntegrityError:
            raise Conflict(
                message=f"{before.repository!r} already has a webhook named {spec.name!r}"
            ) from None
        if row is None:
            raise ResourceUnknown(message=f"no webhook {webhook}")
        changed = ", ".join(sorted(set(values) - {"updated_at"}))
        await self._audit(hub, "webhook.update", row.repository, f"{webhook}: {changed}")
        return _webhook_out(row)

    async def delete(self, hub: Management, webhook: int) -> None:
        found = await self._webhook(hub, webhook)
        await self._db.transaction(_tx_delete, webhook)
        await self._audit(hub, "webhook.delete", found.repository, f"{webhook} {found.name}")

    async def deliveries(
        self,
        hub: Management,
        webhook: int,
        *,
        limit: int = 50,
        state: DeliveryState | None = None,
    ) -> list[DeliveryOut]:
        """The newest deliveries first, each with its attempts."""
        await self._webhook(hub, webhook)
        query = (
            select(webhook_deliveries)
            .where(webhook_deliveries.c.webhook_id == webhook)
            .order_by(webhook_deliveries.c.id.desc())
            .limit(max(1, min(limit, MAX_HISTORY)))
        )
        if state is not None:
            query = query.where(webhook_deliveries.c.state == state)
        rows = await self._db.read(query)
        attempts = await self._attempts([row.id for row in rows])
        return [
            DeliveryOut(
                id=row.id,
                webhook=row.webhook_id,
                event=row.event,
                created_at=row.created_at,
                state=row.state,
                attempts=row.attempts,
                response_code=row.response_code,
                next_attempt_at=row.next_attempt_at,
                finished_at=row.finished_at,
                payload=json.loads(row.payload),
                history=attempts.get(row.id, []),
            )
            for row in rows
        ]

    async def _attempts(self, deliveries: Sequence[int]) -> dict[int, list[AttemptOut]]:
        if not deliveries:
            return {}
        rows = await self._db.read(
            select(webhook_attempts)
            .where(webhook_attempts.c.delivery_id.in_(list(deliveries)))
            .order_by(webhook_attempts.c.delivery_id, webhook_attempts.c.attempt)
        )
        found: dict[int, list[AttemptOut]] = {}
        for row in rows:
            found.setdefault(row.delivery_id, []).append(
                AttemptOut(
                    attempt=row.attempt,
                    time=row.time,
                    response_code=row.response_code,
                    error=row.error,
                    duration_ms=row.duration_ms,
                )
            )
        return found
