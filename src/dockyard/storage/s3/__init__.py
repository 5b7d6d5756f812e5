"""The ``s3`` driver: blobs in any S3-compatible bucket (Distribution's ``storage.s3``).

Built on boto3, each request in a worker thread, rather than on aiobotocore. Both keep the
event loop free of network waits, but botocore also signs and checksums request bodies: under
aiobotocore that CPU work runs on the event loop (measured here: 20-27 ms stalls for each
10 MiB part), in a worker thread it does not (5-10 ms, the GIL's switch interval).
aiobotocore also pins botocore to a narrow range, which clashes with other botocore users.
Large reads are the exception: boto3 presigns them and the event loop streams the body from a
socket of its own, which halves their CPU (``ranges``). Memory stays flat: reads stream ranged
GETs a chunk at a time; a writer holds at most one part.

Modules: ``layout`` (paths to keys), ``parts`` (multipart limits), ``bucket`` (the requests),
``client`` (a client from config), ``ranges`` (streamed reads), ``pacing`` (their chunk sizes),
``writer`` (resumable multipart writes), ``driver``.
"""

from __future__ import annotations

from dockyard.storage.s3.bucket import ObjectOptions, S3Error
from dockyard.storage.s3.driver import REDIRECT_SECONDS, S3Driver
from dockyard.storage.s3.writer import S3Writer

__all__ = ["REDIRECT_SECONDS", "ObjectOptions", "S3Driver", "S3Error", "S3Writer"]
