"""What the core asks of services it does not own: room under a storage quota before it links
a blob, and a tally of the pulls of each tag.

Protocols here, implemented in ``dockyard.lifecycle`` (``Quotas``, ``PullRecorder``) and wired
by the composition root, so that the core imports none of them. Either may be absent: then no
quota applies and no pull is counted.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

__all__ = ["PullSink", "QuotaGate"]


class QuotaGate(Protocol):
    """What the core asks before it links a blob."""

    def admit(self, repository: str, digest: str, size: int) -> AbstractAsyncContextManager[None]:
        """Hold room for the blob until the block ends (the blob linked by then); raises
        ``QuotaExceeded`` when it does not fit."""
        ...


class PullSink(Protocol):
    """What the core tells of each pull of a tag."""

    def record(self, repository: str, tag: str) -> None: ...
