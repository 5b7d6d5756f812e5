"""Webhook URLs and addresses, and the queue and sender of ``dockyard.events.webhooks``
against real SQLite and PostgreSQL databases and a real HTTP endpoint."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpcore
import httpx
import pytest
from sqlalchemy import Connection, insert, select, update

from dockyard.config.models import WebhooksConfig
from dockyard.errors import RequestInvalid
from dockyard.events.outbox import Outbox, PendingEvent
from dockyard.events.webhooks import (
    GuardedBackend,
    WebhookQueue,
    WebhookSender,
    address_allowed,
    sign,
    webhook_client,
)
from dockyard.hub.webhooks import check_url
from dockyard.metadata.factory import open_store
from dockyard.metadata.schema import (
    repository_settings,
    webhook_attempts,
    webhook_deliveries,
    webhooks,
)
from dockyard.metadata.sql import SqlMetadataStore
from events.receiver import Receiver, receiver

NOW = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)

# -- URLs and addresses ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/x?y=1",
        "http://hooks.example.com:8080/",
        "https://93.184.216.34/hook",
        "http://[2606:4700::1111]/",
        "http://localhost:9000/",  # names are checked when a delivery connects
    ],
)
def test_urls_accepted(url: str) -> None:
    assert check_url(url, allow_private=False) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://hooks.example.com/", "http:// or https://"),
        ("//hooks.example.com/", "http:// or https://"),
        ("http:///x", "no host"),
        ("http://a.example.com:0/", "port 0"),
        ("http://a.example.com:70000/", "invalid"),
        ("http://a .example.com/", "spaces or control"),
        ("http://[::1/", "invalid"),
    ],
)
def test_urls_refused(url: str, why: str) -> None:
    with pytest.raises(RequestInvalid) as refused:
        check_url(url, allow_private=True)
    assert why in refused.value.text


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "10.0.0.8",
        "172.16.1.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:10.0.0.1",
        "224.0.0.1",
        "255.255.255.255",
    ],
)
def test_private_addresses_refused_unless_allowed(host: str) -> None:
    assert not address_allowed(ipaddress.ip_address(host))
    url = f"http://[{host}]/" if ":" in host else f"http://{host}/"
    with pytest.raises(RequestInvalid, match="allowprivate"):
        check_url(url, allow_private=False)
    assert check_url(url, allow_private=True) == url


def test_global_addresses_allowed() -> None:
    for host in ("8.8.8.8", "93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8"):
        assert address_allowed(ipaddress.ip_address(host)), host


def test_signature_is_hmac_sha256_of_the_body() -> None:
    # RFC 4231 test case 2.
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert sign("Jefe", b"what do ya want for nothing?") == f"sha256={expected}"


# -- connecting ------------------------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[Receiver]:
    with receiver() as state:
        yield state


async def test_guarded_backend_refuses_names_that_resolve_inside(listener: Receiver) -> None:
    port = int(listener.url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(httpcore.ConnectError, match="allowprivate"):
        await GuardedBackend().connect_tcp("localhost", port, timeout=2)
    url = listener.url.replace("127.0.0.1", "localhost")
    body: dict[str, list[str]] = {"events": []}
    async with webhook_client(WebhooksConfig()) as guarded:
        with pytest.raises(httpx.ConnectError, match="allowprivate"):
            await guarded.post(url, json=body)
    async with webhook_client(WebhooksConfig(allowprivate=True)) as open_client:
        assert (await open_client.post(url, json=body)).status_code == 200
    assert len(listener.accepted) == 1


# -- queue and sender ------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    from metadata.test_postgres import database_of

    with database_of(request.param, tmp_path) as url:
        yield url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlMetadataStore]:
    found = await open_store(database_url)
    yield found
    await found.close()


def _setup(conn: Connection, url: str) -> int:
    for name in ("acme/app", "acme/other"):
        conn.execute(
            insert(repository_settings).values(
                repository=name, visibility="public", created_at=NOW, description="d"
            )
        )
    hook = conn.execute(
        insert(webhooks)
        .values(
            repository="acme/app",
            name="ci",
            url=url,
            secret="k",
            active=True,
            created_at=NOW,
            updated_at=NOW,
        )
        .returning(webhooks.c.id)
    ).scalar_one()
    conn.execute(
        insert(webhooks).values(
            repository="acme/app",
            name="off",
            url=url,
            active=False,
            created_at=NOW,
            updated_at=NOW,
        )
    )
    return int(hook)


def _event(event_id: str, repository: str = "acme/app", tag: str | None = "v1") -> str:
    target = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:" + "a" * 64,
        "repository": repository,
        "url": f"https://registry.example.com/v2/{repository}/manifests/sha256:{'a' * 64}",
    }
    if tag is not None:
        target["tag"] = tag
    body = {
        "id": event_id,
        "timestamp": "2026-11-27T04:00:00.5Z",
        "action": "push",
        "target": target,
        "actor": {"name": "alice"},
    }
    return json.dumps(body)


async def _deliveries(store: SqlMetadataStore) -> list[dict[str, object]]:
    rows = await store.database.read(select(webhook_deliveries).order_by(webhook_deliveries.c.id))
    return [dict(row._mapping) for row in rows]


async def test_queue_and_retry_schedule(store: SqlMetadataStore, listener: Receiver) -> None:
    database = store.database
    hook = await database.transaction(_setup, listener.url)
    outbox = Outbox(database)
    queue = WebhookQueue(outbox)
    events = [
        PendingEvent(1, _event("e1")),
        PendingEvent(2, _event("e2", tag=None)),  # by digest: no webhook
        PendingEvent(3, _event("e3", "acme/other")),  # a repository without webhooks
    ]
    assert await queue.deliver(events) == "queued"
    assert await queue.deliver(events[:1]) == "queued"  # delivered twice, queued once
    (queued,) = await _deliveries(store)
    assert queued["webhook_id"] == hook
    assert queued["event"] == "e1"
    assert queued["state"] == "pending"
    payload = json.loads(str(queued["payload"]))
    assert (
        payload["callback_url"] == f"https://registry.example.com/api/v1/webhooks/{hook}/deliveries"
    )
    assert payload["push_data"] == {
        "images": ["sha256:" + "a" * 64],
        "media_type": "application/vnd.oci.image.manifest.v1+json",
        "pushed_at": int(datetime(2026, 11, 27, 4, 0, tzinfo=UTC).timestamp()),
        "pusher": "alice",
        "tag": "v1",
    }
    assert payload["repository"]["repo_url"] == "https://registry.example.com/r/acme/app"
    assert payload["repository"]["date_created"] == int(NOW.timestamp())

    settings = WebhooksConfig(
        # Backoffs long enough that no attempt, however slow the machine, is due again
        # before the test makes it due.
        allowprivate=True,
        backoff=30.0,
        maxbackoff=90.0,
        maxattempts=4,
        timeout=2.0,
    )
    listener.status = 500
    async with webhook_client(settings) as client:
        sender = WebhookSender(outbox, settings, client, "me")
        waits = []
        for _ in range(4):
            assert await sender.send_due() == 1
            assert await sender.send_due() == 0  # not due again before its backoff
            (row,) = await _deliveries(store)
            if row["state"] != "pending":
                break
            attempts = await database.read(
                select(webhook_attempts.c.time).order_by(webhook_attempts.c.attempt.desc())
            )
            assert isinstance(row["next_attempt_at"], datetime)
            waits.append((row["next_attempt_at"] - attempts[0].time).total_seconds())
            await database.transaction(_make_due)
    assert waits == [30.0, 60.0, 90.0]  # doubled, then capped at maxbackoff
    assert row["state"] == "failed"
    assert row["attempts"] == 4
    assert row["response_code"] == 500
    assert listener.refused == [500] * 4
    history = await database.read(select(webhook_attempts).order_by(webhook_attempts.c.attempt))
    assert [(a.attempt, a.response_code, a.error) for a in history] == [
        (n, 500, "HTTP 500") for n in range(1, 5)
    ]


def _make_due(conn: Connection) -> None:
    conn.execute(update(webhook_deliveries).values(next_attempt_at=datetime.now(UTC)))


async def test_signed_delivery_and_history_pruning(
    store: SqlMetadataStore, listener: Receiver
) -> None:
    database = store.database
    await database.transaction(_setup, listener.url)
    outbox = Outbox(database)
    await WebhookQueue(outbox).deliver([PendingEvent(1, _event("e1"))])
    settings = WebhooksConfig(allowprivate=True, history=60.0)
    async with webhook_client(settings) as client:
        assert await WebhookSender(outbox, settings, client, "me").send_due() == 1
    (row,) = await _deliveries(store)
    assert row["state"] == "delivered"
    assert row["response_code"] == 200
    (received,) = listener.accepted
    raw = json.dumps(received.body, separators=(",", ":")).encode()
    assert received.headers["X-Dockyard-Signature-256"] == sign("k", raw)
    from dockyard.events.webhooks import _prune

    assert await database.transaction(_prune, NOW) == 0  # finished after NOW: kept
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert await database.transaction(_prune, later) == 1
    assert await _deliveries(store) == []
    assert await database.read(select(webhook_attempts)) == []


# -- config ----------------------------------------------------------------------------------


def test_config_keys_and_environment(tmp_path: Path) -> None:
    from dockyard.config import ConfigError, load_config

    assert load_config(None, {}).hub.webhooks == WebhooksConfig()
    assert WebhooksConfig().allowprivate is False
    path = tmp_path / "config.yml"
    path.write_text("version: 0.1\nhub:\n  webhooks:\n    backoff: 250ms\n    maxattempts: 3\n")
    env = {"REGISTRY_HUB_WEBHOOKS_ALLOWPRIVATE": "true"}
    loaded = load_config(str(path), env).hub.webhooks
    assert (loaded.allowprivate, loaded.backoff, loaded.maxattempts) == (True, 0.25, 3)
    path.write_text("version: 0.1\nhub:\n  webhooks:\n    maxattempts: 0\n")
    with pytest.raises(ConfigError, match=r"hub\.webhooks\.maxattempts"):
        load_config(str(path), {})
