"""The outbox queues of notification endpoints: each endpoint's name for its queue, and the
queues of endpoints taken out of the config, removed once nobody sends for them. Apart from
``endpoint`` (the sending), which needs an HTTP client: every worker runs this at start-up."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from dockyard.config.notifications import EndpointConfig
from dockyard.events.outbox import Outbox

__all__ = ["REMOVED_AFTER", "consumer_name", "forget_removed_endpoints"]

PREFIX = "endpoint:"
REMOVED_AFTER = timedelta(hours=6)
"""How long nobody must have sent for an unconfigured endpoint before its queue goes."""

log = logging.getLogger("dockyard.events")


def consumer_name(endpoint: EndpointConfig) -> str:
    """The endpoint's queue in the outbox (apart from other consumers such as the audit log)."""
    return PREFIX + endpoint.name


async def forget_removed_endpoints(
    outbox: Outbox, configured: Iterable[EndpointConfig], now: datetime | None = None
) -> int:
    """Delete the queued deliveries of endpoints that are not in ``configured`` (this
    process's ``notifications.endpoints``, disabled ones included) and that no replica has
    sent to for :data:`REMOVED_AFTER`; log them; how many rows went.

    Why this is safe while replicas run different configs (a rolling update): a replica cannot
    see another's config, but it sees what they do. Every process that has an endpoint
    configured claims its lease every few seconds and renews it while sending (``outbox.py``),
    so the lease's time keeps within a minute of now while any replica delivers there. Hours of
    margin cover clocks that disagree (each replica writes lease times by its own), a replica
    cut off from the database for a while, and a slow update; and only events queued before
    the cut-off go, so a queue another replica has only just started is never touched. A config
    option instead would be forgotten (the leak stays), or, set on new replicas during an
    update, remove queues the old ones still deliver. The price: a removed endpoint's queue
    stays for some hours, until a check after that (at start-up and every hour).
    """
    now = datetime.now(UTC) if now is None else now
    keep = {consumer_name(endpoint) for endpoint in configured}
    removed = await outbox.forget(PREFIX, keep, now - REMOVED_AFTER)
    if removed:
        log.info(
            "removed %d queued deliveries of endpoints no longer configured anywhere: %s",
            removed.total(),
            ", ".join(sorted(name.removeprefix(PREFIX) for name in removed)),
        )
        await outbox.sweep()
    return removed.total()
