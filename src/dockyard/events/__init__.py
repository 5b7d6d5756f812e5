"""Content events (push, pull, mount, delete of blobs and manifests) and their delivery.

How an event travels::

    core (Blobs, Manifests, Uploads)  --EventSink.changed()-->  OutboxEvent bodies
        |  passed to the MetadataStore write, recorded in the change's own transaction
        v
    events + event_deliveries tables (one delivery row per consumer)
        |  a Deliverer per consumer, on whichever process holds its lease
        v
    HttpEndpoint (Distribution's notifications)  or  AuditLog (identity's audit_events)

Pulls change nothing, so they are buffered in memory and flushed in batches (``pulls.py``).
Nothing is written when nothing consumes events.
"""
