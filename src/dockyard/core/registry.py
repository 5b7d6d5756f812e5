"""The core, composed from the two seams: what the HTTP layer calls."""

from __future__ import annotations

from dockyard.core.blobs import Blobs
from dockyard.core.gc import Placements
from dockyard.core.manifests import Manifests
from dockyard.core.policy import Policy
from dockyard.core.seams import PullSink, QuotaGate
from dockyard.core.uploads import Uploads
from dockyard.events.sink import NO_EVENTS, EventSink
from dockyard.metadata.base import MetadataStore
from dockyard.storage.base import StorageDriver

__all__ = ["Registry"]


class Registry:
    def __init__(
        self,
        storage: StorageDriver,
        metadata: MetadataStore,
        policy: Policy,
        redirects: bool = True,
        placements: Placements | None = None,
        events: EventSink = NO_EVENTS,
        quotas: QuotaGate | None = None,
        pulls: PullSink | None = None,
    ) -> None:
        self.storage = storage
        self.metadata = metadata
        self.policy = policy
        self.blobs = Blobs(storage, metadata, policy, redirects, events=events)
        self.uploads = Uploads(
            storage, metadata, policy, placements=placements, events=events, quotas=quotas
        )
        self.manifests = Manifests(metadata, policy, events=events, pulls=pulls)
