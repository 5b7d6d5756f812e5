"""The ``EventSink`` seam: what the core tells about content, as Distribution's events.

The core calls ``changed`` for a push, mount or delete and hands the result to the metadata
write that makes the change (so the events commit with it), and ``pulled`` after a read.
``Events`` builds each event's JSON body once (Distribution's ``notifications.Event``) and names
the consumers that want it; ``NO_EVENTS`` is the sink when nothing consumes events, and costs
nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from dockyard import manifest
from dockyard.events.context import RequestContext, current
from dockyard.manifest import Descriptor
from dockyard.mediatypes import OCTET_STREAM
from dockyard.metadata.base import OutboxEvent

__all__ = [
    "BLOB_MEDIA_TYPE",
    "NO_EVENTS",
    "ConsumerFilter",
    "EventSink",
    "Events",
    "NullSink",
    "Target",
]

Action = Literal["push", "pull", "mount", "delete"]

# Distribution describes blobs by this media type in events (it does not know a layer's).
BLOB_MEDIA_TYPE = OCTET_STREAM


@dataclass(frozen=True, slots=True)
class Target:
    """What an event is about: a blob or a manifest (by digest, perhaps by tag too)."""

    kind: Literal["blob", "manifest"]
    repository: str
    digest: str | None = None
    media_type: str | None = None
    size: int | None = None
    tag: str | None = None
    from_repository: str | None = None
    references: tuple[Descriptor, ...] | None = None
    # A manifest's payload, parsed for ``references`` only when they are wanted.
    payload: bytes | None = field(default=None, repr=False)


class EventSink(Protocol):
    def changed(self, action: Action, target: Target) -> Sequence[OutboxEvent]:
        """Events to record in the transaction that makes the change (empty when nobody
        consumes them)."""
        ...

    def pulled(self, target: Target) -> None:
        """Record a pull, later and in a batch (pulls change nothing)."""
        ...


class NullSink:
    def changed(self, action: Action, target: Target) -> Sequence[OutboxEvent]:
        return ()

    def pulled(self, target: Target) -> None:
        return None


NO_EVENTS: EventSink = NullSink()


@dataclass(frozen=True, slots=True)
class ConsumerFilter:
    name: str
    ignores: Callable[[str, str | None], bool]
    """(action, target media type) -> True when the consumer does not want the event."""


def _timestamp(now: datetime) -> str:
    return now.isoformat().replace("+00:00", "Z")


def _references(target: Target) -> list[dict[str, Any]] | None:
    references = target.references
    if references is None and target.payload is not None:
        try:
            parsed = manifest.parse(target.payload, target.media_type)
        except Exception:  # stored manifests were valid when pushed; never fail a pull
            return None
        config = () if parsed.config is None else (parsed.config,)
        references = (*config, *parsed.layers, *parsed.manifests)
    if references is None:
        return None
    return [{"mediaType": d.media_type, "digest": d.digest, "size": d.size} for d in references]


class Events:
    """An ``EventSink`` for the given consumers. ``pull_buffer`` takes the pull events."""

    def __init__(
        self,
        consumers: Sequence[ConsumerFilter],
        *,
        source_addr: str,
        instance_id: str,
        include_references: bool = False,
        host: str | None = None,
        pull_buffer: Callable[[OutboxEvent], None] | None = None,
    ) -> None:
        self._consumers = tuple(consumers)
        self._source = {"addr": source_addr, "instanceID": instance_id}
        self._include_references = include_references
        self._host = host.rstrip("/") if host else None
        self._pull_buffer = pull_buffer

    def changed(self, action: Action, target: Target) -> Sequence[OutboxEvent]:
        event = self._event(action, target)
        return () if event is None else (event,)

    def pulled(self, target: Target) -> None:
        if self._pull_buffer is None:
            return
        event = self._event("pull", target)
        if event is not None:
            self._pull_buffer(event)

    def _event(self, action: Action, target: Target) -> OutboxEvent | None:
        media_type = target.media_type if action != "delete" else None
        wanted = tuple(c.name for c in self._consumers if not c.ignores(action, media_type))
        if not wanted:
            return None
        request = current()
        body = {
            "id": str(uuid.uuid4()),
            "timestamp": _timestamp(datetime.now(UTC)),
            "action": action,
            "target": self._target(action, target, request),
            "request": _request(request),
            "actor": {"name": request.actor} if request and request.actor else {},
            "source": self._source,
        }
        return OutboxEvent(json.dumps(body, separators=(",", ":")), wanted)

    def _target(
        self, action: Action, target: Target, request: RequestContext | None
    ) -> dict[str, Any]:
        if action == "delete":
            # Distribution sends only what identifies the deleted content.
            deleted: dict[str, Any] = {"repository": target.repository}
            if target.digest is not None:
                deleted["digest"] = target.digest
            if target.tag is not None:
                deleted["tag"] = target.tag
            return deleted
        out: dict[str, Any] = {
            "mediaType": target.media_type,
            "size": target.size,
            "digest": target.digest,
            "length": target.size,
            "repository": target.repository,
        }
        if target.from_repository is not None:
            out["fromRepository"] = target.from_repository
        base = self._host or (request.base_url if request else "")
        out["url"] = f"{base}/v2/{target.repository}/{target.kind}s/{target.digest}"
        if target.tag is not None:
            out["tag"] = target.tag
        if self._include_references and target.kind == "manifest":
            references = _references(target)
            if references is not None:
                out["references"] = references
        return out


def _request(request: RequestContext | None) -> dict[str, str]:
    if request is None:
        return {}
    return {
        "id": request.id,
        "addr": request.addr,
        "host": request.host,
        "method": request.method,
        "useragent": request.useragent,
    }
