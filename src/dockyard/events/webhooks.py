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
``sha256=`` and the hex HMAC-SHA256 of the body under the secret (``webhook_payload.sign``).

One module per part: ``webhook_payload`` (the body and its signature), ``webhook_queue``
(events to deliveries), ``webhook_address`` and ``webhook_network`` (which addresses a webhook
may reach) and ``webhook_sender`` (deliveries to POSTs). Only the sending needs httpx: what a
server without webhooks imports comes from the other modules directly.
"""

from __future__ import annotations

from dockyard.events.webhook_address import address_allowed
from dockyard.events.webhook_network import GuardedBackend, webhook_client
from dockyard.events.webhook_payload import SIGNATURE_HEADER, sign
from dockyard.events.webhook_queue import WEBHOOKS_CONSUMER, WebhookQueue, ignores
from dockyard.events.webhook_sender import WebhookSender, run_webhooks
from dockyard.events.webhook_sender import prune as _prune  # noqa: F401 (tests import it)

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
    "webhook_client",
]
