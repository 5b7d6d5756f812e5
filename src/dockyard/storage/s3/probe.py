"""Whether a ``storage.s3`` section reaches its bucket, and if not, which key is wrong.

One listing of at most one key under ``rootdirectory``: the cheapest request that needs the
bucket to exist and the credentials to be valid and allowed to list it, as the registry
will. S3's error codes name what the store refused; each maps to the key to fix.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from dockyard.config import Problem
from dockyard.config.storage import S3Config
from dockyard.storage.s3.bucket import S3Unavailable, translate
from dockyard.storage.s3.client import make_client
from dockyard.storage.s3.layout import Layout

__all__ = ["probe_bucket"]

ATTEMPTS = 2
TIMEOUT = 10.0
"""At most the seconds to connect, and between reads, before the store counts as out of
reach (``dialtimeout`` and ``readtimeout``, if shorter)."""

# S3's error code -> the key at fault and what to say ({bucket}: its name; {error}: the answer).
_CODES: dict[str, tuple[str, str]] = {
    "NoSuchBucket": ("bucket", "no bucket {bucket!r} at this endpoint"),
    "InvalidBucketName": ("bucket", "{bucket!r} is not a valid bucket name"),
    "InvalidAccessKeyId": ("accesskey", "the store knows no such access key"),
    "SignatureDoesNotMatch": (
        "secretkey",
        "the signature does not match: not the secret key of this access key",
    ),
    "AccessDenied": ("accesskey", "these credentials may not list bucket {bucket!r}"),
    "AllAccessDisabled": ("bucket", "all access to bucket {bucket!r} is disabled"),
    "InvalidToken": ("sessiontoken", "the store does not accept this session token"),
    "ExpiredToken": ("sessiontoken", "the session token has expired"),
    "AuthorizationHeaderMalformed": ("region", "the store expects another region ({error})"),
    "PermanentRedirect": ("region", "bucket {bucket!r} is in another region ({error})"),
}


def probe_bucket(config: S3Config) -> Problem | None:
    """None if the bucket answered; else the key at fault. Raises :class:`S3Unavailable`
    when the store cannot be reached at all (which no key may be to blame for)."""
    client = make_client(config, connections=1, attempts=ATTEMPTS, at_most=TIMEOUT)
    prefix = Layout(config.rootdirectory).children("")
    try:
        client.list_objects_v2(Bucket=config.bucket, Prefix=prefix, MaxKeys=1)
    except NoCredentialsError:
        return Problem(
            "storage.s3.accesskey",
            "no credentials: set accesskey and secretkey, or provide them to the AWS chain",
        )
    except (ClientError, BotoCoreError) as exc:
        error = translate(exc)
        if isinstance(error, S3Unavailable):
            raise error from exc
        if error.code not in _CODES:
            return Problem("storage.s3", f"the store refused a listing: {error}")
        key, text = _CODES[error.code]
        return Problem(f"storage.s3.{key}", text.format(bucket=config.bucket, error=error))
    finally:
        client.close()
    return None
