"""Repository webhooks as a consumer of the outbox: a tagged manifest push becomes a POST in
Docker Hub's webhook format to each active webhook of the repository.

Two steps, both claimed through the database::

    outbox (consumer "webhooks")  --WebhookQueue-->  webhook_deliveries (one row per webhook)
        |  the payload is built and queued in the transaction that acknowledges the event
        v
    WebhookSender (the holder of the lease "webhooks:send")  --POST-->  each webhook's URL
        every try is recorded in webhook_attempts; a failed one is tried again after
        ``backoff``, doubled each time up to ``maxbackoff``, until ``maxattempts``

Why not one outbox consumer per webhook: webhooks come and go at run time, while the outbox's
consumers are fixed by the config; and a webhook that fails must delay neither the others nor
the next events, which the outbox (in order, behind the failing batch) would do.

A payload is signed when the webhook has a secret: ``X-Dockyard-Signature-256`` holds
``sha256=`` and the hex HMAC-SHA256 of the body under the secret (as GitHub's
``X-Hub-Signature-256``). Unless ``hub.webhooks.allowprivate`` is on, every connection is
checked when it is made: a name resolving to a loopback, private, link-local or otherwise
non-global address is refused, so DNS cannot point a webhook back inside.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpcore
import httpx
from sqlalchemy import Connection, and_, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from dockyard.config.models import WebhooksConfig
from dockyard.events.lease import Lease
from dockyard.events.outbox import Outbox, PendingEvent, acknowledge
from dockyard.events.sink import BLOB_MEDIA_TYPE
from dockyard.identity.base import Visibility
from dockyard.metadata.schema import (
    readmes,
    repository_settings,
    stars,
    webhook_attempts,
    webhook_deliveries,
    webhooks,
)

__all__ = [
    "SIGNATURE_HEADER",
    "WEBHOOKS_CONSUMER",
    "GuardedBackend",
    "WebhookQueue",
    "WebhookSender",
    "address_allowed",
    "ignores",
    "run_webhooks",
    "sign",
]

log = logging.getLogger("dockyard.events")

WEBHOOKS_CONSUMER = "webhooks"
SENDER_LEASE = "webhooks:send"
SIGNATURE_HEADER = "X-Dockyard-Signature-256"
USER_AGENT = "Dockyard-Webhook/1"
POLL_INTERVAL = 0.5
LEASE_SECONDS = 30.0
BATCH = 16
PRUNE_EVERY = 600.0
MAX_ERROR = 500


def ignores(action: str, media_type: str | None) -> bool:
    """The outbox filter: only manifest pushes (tags are looked at when queueing)."""
    return action != "push" or media_type in (None, BLOB_MEDIA_TYPE)


def _now() -> datetime:
    return datetime.now(UTC)


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# -- queueing: events -> deliveries ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Push:
    event: str
    repository: str
    tag: str
    digest: str
    media_type: str
    pusher: str
    pushed_at: datetime
    base_url: str


def _push(body: str) -> _Push | None:
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
    return _Push(
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


def _repository(conn: Connection, push: _Push) -> dict[str, Any]:
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


def payload(push: _Push, repository: dict[str, Any], webhook_id: int) -> str:
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


def _insert_ignoring_repeats(conn: Connection) -> Any:
    dialect_insert = sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert
    return dialect_insert(webhook_deliveries).on_conflict_do_nothing(
        index_elements=["webhook_id", "event"]
    )


def _queue(conn: Connection, events: Sequence[PendingEvent], now: datetime) -> int:
    rows: list[dict[str, Any]] = []
    for pending in events:
        push = _push(pending.body)
        if push is None:
            continue
        hooks = conn.execute(
            select(webhooks.c.id).where(
                webhooks.c.repository == push.repository, webhooks.c.active.is_(True)
            )
        ).all()
        if not hooks:
            continue
        repository = _repository(conn, push)
        rows += [
            {
                "webhook_id": hook.id,
                "event": push.event,
                "created_at": now,
                "payload": payload(push, repository, hook.id),
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
            }
            for hook in hooks
        ]
    if rows:
        conn.execute(_insert_ignoring_repeats(conn), rows)
    acknowledge(conn, WEBHOOKS_CONSUMER, [event.id for event in events])
    return len(rows)


class WebhookQueue:
    """The outbox consumer: queues a delivery per active webhook, in the transaction that
    takes the events off the outbox (so each is queued once)."""

    def __init__(self, outbox: Outbox) -> None:
        self._db = outbox.database

    @property
    def name(self) -> str:
        return WEBHOOKS_CONSUMER

    @property
    def label(self) -> str:
        return WEBHOOKS_CONSUMER

    async def deliver(self, events: Sequence[PendingEvent]) -> str:
        await self._db.transaction(_queue, events, _now())
        return "queued"


# -- sending ---------------------------------------------------------------------------------

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def address_allowed(address: _Address) -> bool:
    """Whether a webhook may connect to ``address`` with ``allowprivate`` off."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to global addresses: the name is resolved here, every address checked,
    and the connection made to a checked address (TLS still verifies the name)."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            found = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
            )
        except (OSError, TimeoutError) as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        for text in addresses:
            if not address_allowed(ipaddress.ip_address(text)):
                raise httpcore.ConnectError(
                    f"{host} resolves to {text}, a loopback, private or reserved address "
                    "(allowed only with hub.webhooks.allowprivate)"
                )
        failure: Exception = httpcore.ConnectError(f"{host} has no address")
        for text in addresses:
            try:
                return await self._inner.connect_tcp(
                    text, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks do not connect to Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(),
        )


def webhook_client(settings: WebhooksConfig) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    if not settings.allowprivate:
        transport = _GuardedTransport()
    # No redirects: a webhook answers where it was configured, or not at all.
    return httpx.AsyncClient(transport=transport, trust_env=False, follow_redirects=False)


@dataclass(frozen=True, slots=True)
class _Due:
    id: int
    attempts: int
    payload: str
    url: str
    secret: str | None


@dataclass(frozen=True, slots=True)
class _Outcome:
    time: datetime
    response_code: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.response_code is not None and 200 <= self.response_code < 300


def _due_query(now: datetime, limit: int) -> Any:
    return (
        select(
            webhook_deliveries.c.id,
            webhook_deliveries.c.attempts,
            webhook_deliveries.c.payload,
            webhooks.c.url,
            webhooks.c.secret,
        )
        .join(webhooks, webhooks.c.id == webhook_deliveries.c.webhook_id)
        .where(
            webhook_deliveries.c.state == "pending",
            webhook_deliveries.c.next_attempt_at <= now,
            webhooks.c.active.is_(True),
        )
        .order_by(webhook_deliveries.c.next_attempt_at, webhook_deliveries.c.id)
        .limit(limit)
    )


def _record(conn: Connection, due: _Due, outcome: _Outcome, settings: WebhooksConfig) -> None:
    attempt = due.attempts + 1
    counted = conn.execute(
        update(webhook_deliveries)
        .where(
            webhook_deliveries.c.id == due.id,
            # Another sender that already recorded this attempt wins (a stalled lease).
            webhook_deliveries.c.attempts == due.attempts,
        )
        .values(attempts=attempt, response_code=outcome.response_code)
    )
    if not counted.rowcount:
        return
    conn.execute(
        insert(webhook_attempts).values(
            delivery_id=due.id,
            attempt=attempt,
            time=outcome.time,
            response_code=outcome.response_code,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
        )
    )
    changes: dict[str, Any]
    if outcome.delivered or attempt >= settings.maxattempts:
        changes = {
            "state": "delivered" if outcome.delivered else "failed",
            "next_attempt_at": None,
            "finished_at": outcome.time,
        }
    else:
        wait = min(settings.backoff * 2 ** (attempt - 1), settings.maxbackoff)
        changes = {"next_attempt_at": outcome.time + timedelta(seconds=wait)}
    conn.execute(
        update(webhook_deliveries)
        # Still pending: switching the webhook off while this attempt ran gave it up.
        .where(webhook_deliveries.c.id == due.id, webhook_deliveries.c.state == "pending")
        .values(**changes)
    )


def _prune(conn: Connection, before: datetime) -> int:
    finished = conn.execute(
        delete(webhook_deliveries).where(
            and_(
                webhook_deliveries.c.state != "pending",
                webhook_deliveries.c.finished_at < before,
            )
        )
    )
    return int(finished.rowcount)


class WebhookSender:
    """Sends due deliveries while holding the ``webhooks:send`` lease (one process of all
    replicas at a time; a batch goes out concurrently, each with its own timeout)."""

    def __init__(
        self,
        outbox: Outbox,
        settings: WebhooksConfig,
        client: httpx.AsyncClient,
        holder: str,
        *,
        poll: float = POLL_INTERVAL,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self._db = outbox.database
        self._settings = settings
        self._client = client
        self._poll = poll
        self._lease = Lease(outbox, SENDER_LEASE, holder, lease_seconds)

    async def run_forever(self) -> None:
        await self._lease.run_forever(self._send_while_held, "webhook delivery failed")

    async def _send_while_held(self) -> None:
        renew_at = time.monotonic() + self._lease.seconds / 3
        pruned_at = time.monotonic() - PRUNE_EVERY
        while True:
            if time.monotonic() >= renew_at:
                if not await self._lease.claim():
                    return
                renew_at = time.monotonic() + self._lease.seconds / 3
            if time.monotonic() - pruned_at >= PRUNE_EVERY:
                before = _now() - timedelta(seconds=self._settings.history)
                await self._db.transaction(_prune, before)
                pruned_at = time.monotonic()
            if not await self.send_due():
                await asyncio.sleep(self._poll)

    async def send_due(self) -> int:
        """Try every due delivery (up to a batch) once; how many were tried."""
        rows = await self._db.read(_due_query(_now(), BATCH))
        due = [_Due(r.id, r.attempts, r.payload, r.url, r.secret) for r in rows]
        await asyncio.gather(*(self._send(one) for one in due))
        return len(due)

    async def _send(self, due: _Due) -> None:
        outcome = await self._attempt(due)
        if not outcome.delivered:
            log.warning(
                "webhook delivery %d to %s failed (attempt %d): %s",
                due.id,
                due.url,
                due.attempts + 1,
                outcome.error,
            )
        try:
            await self._db.transaction(_record, due, outcome, self._settings)
        except Exception:
            # The others of the batch are recorded all the same; this one is tried again.
            log.exception("could not record webhook delivery %d", due.id)

    async def _attempt(self, due: _Due) -> _Outcome:
        body = due.payload.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Dockyard-Event": "push",
            "X-Dockyard-Delivery": str(due.id),
        }
        if due.secret:
            headers[SIGNATURE_HEADER] = sign(due.secret, body)
        started = _now()
        clock = time.monotonic()
        code: int | None = None
        error: str | None = None
        try:
            response = await self._client.post(
                due.url, content=body, headers=headers, timeout=self._settings.timeout
            )
        except httpx.HTTPError as failure:
            error = str(failure) or type(failure).__name__
        else:
            code = response.status_code
            if not 200 <= code < 300:
                error = f"HTTP {code}"
        elapsed = int((time.monotonic() - clock) * 1000)
        return _Outcome(started, code, error[:MAX_ERROR] if error else None, elapsed)


async def run_webhooks(outbox: Outbox, settings: WebhooksConfig, holder: str) -> None:
    """Send webhooks until cancelled (a background task of the app)."""
    client = webhook_client(settings)
    try:
        await WebhookSender(outbox, settings, client, holder).run_forever()
    finally:
        await client.aclose()
