"""The audit log's push, pull and delete entries, fed by the event outbox when ``auth.builtin``
is on, over a real server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from auth.builtin_setup import write_key
from dockyard.identity.base import AuditEvent

from .conftest import DISTRIBUTION, ServerFactory
from .test_builtin_auth import USERS, Site, _add_user, _builtin_config

pytestmark = pytest.mark.skipif(DISTRIBUTION, reason="auth.builtin is Dockyard's own")


def _content(site: Site) -> list[AuditEvent]:
    events = site.identity(lambda store: store.audit_events(actor="alice"))
    return [e for e in events if e.action in ("push", "pull", "delete")]


def test_pushes_pulls_and_deletes_are_audited(
    registry_factory: ServerFactory, tmp_path: Path
) -> None:
    config: dict[str, Any] = _builtin_config(write_key(tmp_path / "signing.pem"))
    server = registry_factory(config, run=False)
    _add_user(server, "alice", USERS["alice"])
    server.start()
    site = Site(server)
    repo = "alice/audited"
    scope = f"repository:{repo}:pull,push,delete"
    started = time.time()
    with site.client_for("alice", scope) as client:
        image = client.push_image(repo, "v1", layers=1)
        assert client.get_manifest(repo, "v1").status_code == 200
        assert client.http.delete(f"/v2/{repo}/manifests/{image.digest}").status_code == 202
    deadline = time.monotonic() + 20
    while len(entries := _content(site)) < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    # Two blobs and the manifest pushed, the manifest pulled, then deleted.
    shape = sorted((e.action, e.digest, e.tag) for e in entries)
    blobs = sorted(image.blobs)
    assert shape == sorted(
        [
            ("push", blobs[0], None),
            ("push", blobs[1], None),
            ("push", image.digest, "v1"),
            ("pull", image.digest, "v1"),
            ("delete", image.digest, None),
        ]
    )
    for entry in entries:
        assert entry.actor == "alice"
        assert entry.client_address == "127.0.0.1"
        assert entry.repository == repo
        assert entry.outcome == "success"
        assert started - 1 <= entry.time.timestamp() <= time.time()
    # Exactly once: nothing more arrives.
    time.sleep(1.5)
    assert len(_content(site)) == 5
