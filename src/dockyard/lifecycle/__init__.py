"""Storage lifecycle: immutable tags, quotas, usage, pull counts and retention policies.

Modules, one concept each::

    patterns    the glob syntax rules and policies share
    immutable   rules that refuse moving or deleting a tag (enforced by a trigger)
    quotas      storage limits, checked and reserved when a blob is linked
    usage       bytes per repository and namespace (counters kept by triggers), pulls per tag
    pulls       pull counting, batched in memory and flushed every second
    retention   which tags policies keep, and removing the others
    service     ``LifecycleService``, what the CLI and the management API call
    runtime     the background tasks a serving process runs
    cli         ``dockyard immutable|quota|retention|usage``
"""
