"""Registry errors, declared once.

Every error a client can see is a subclass of :class:`RegistryError` carrying the wire
code of the OCI Distribution spec (or Distribution's extensions), a default message and the
HTTP status. One handler in ``api/base.py`` renders them as the spec's JSON envelope::

    RegistryError
    ├── BlobUnknown            BLOB_UNKNOWN            404
    ├── BlobUploadInvalid      BLOB_UPLOAD_INVALID     400
    ├── BlobUploadUnknown      BLOB_UPLOAD_UNKNOWN     404
    ├── DigestInvalid          DIGEST_INVALID          400
    ├── ManifestBlobUnknown    MANIFEST_BLOB_UNKNOWN   400
    ├── ManifestInvalid        MANIFEST_INVALID        400
    ├── ManifestUnknown        MANIFEST_UNKNOWN        404
    ├── ManifestTooLarge       MANIFEST_INVALID        413
    ├── NameInvalid            NAME_INVALID            400
    ├── NameUnknown            NAME_UNKNOWN            404
    ├── SizeInvalid            SIZE_INVALID            400
    ├── TagInvalid             TAG_INVALID             400
    ├── RangeInvalid           RANGE_INVALID           416
    ├── PaginationInvalid      PAGINATION_NUMBER_INVALID 400
    ├── Unauthorized           UNAUTHORIZED            401
    ├── Denied                 DENIED                  403
    ├── Unsupported            UNSUPPORTED             405
    ├── TooManyRequests        TOOMANYREQUESTS         429
    ├── TokenRequestInvalid    TOKEN_REQUEST_INVALID   400
    ├── EndpointUnknown        NOT_FOUND               404
    ├── ResourceUnknown        NOT_FOUND               404
    ├── RequestInvalid         REQUEST_INVALID         400
    ├── Conflict               CONFLICT                409
    ├── TagImmutable           TAG_IMMUTABLE           409
    ├── QuotaExceeded          DENIED                  403
    └── Unavailable            UNAVAILABLE             503
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "BlobUnknown",
    "BlobUploadInvalid",
    "BlobUploadUnknown",
    "Conflict",
    "Denied",
    "DigestInvalid",
    "EndpointUnknown",
    "ManifestBlobUnknown",
    "ManifestInvalid",
    "ManifestTooLarge",
    "ManifestUnknown",
    "NameInvalid",
    "NameUnknown",
    "PaginationInvalid",
    "QuotaExceeded",
    "RangeInvalid",
    "RegistryError",
    "RequestInvalid",
    "ResourceUnknown",
    "SizeInvalid",
    "TagImmutable",
    "TagInvalid",
    "TokenRequestInvalid",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "Unsupported",
    "error_table",
]


class RegistryError(Exception):
    """Root of every error shown to a client."""

    code: ClassVar[str] = "UNKNOWN"
    message: ClassVar[str] = "unknown error"
    status: ClassVar[int] = 500

    def __init__(
        self,
        detail: Any = None,
        *,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.detail = detail
        self.text = message or self.message
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(self.text if detail is None else f"{self.text}: {detail}")

    def envelope(self) -> dict[str, Any]:
        """The spec's ``{"errors": [...]}`` body."""
        entry: dict[str, Any] = {"code": self.code, "message": self.text}
        if self.detail is not None:
            entry["detail"] = self.detail
        return {"errors": [entry]}


class BlobUnknown(RegistryError):
    code = "BLOB_UNKNOWN"
    status = 404
    message = "blob unknown to registry"


class BlobUploadInvalid(RegistryError):
    code = "BLOB_UPLOAD_INVALID"
    status = 400
    message = "blob upload invalid"


class BlobUploadUnknown(RegistryError):
    code = "BLOB_UPLOAD_UNKNOWN"
    status = 404
    message = "blob upload unknown to registry"


class DigestInvalid(RegistryError):
    code = "DIGEST_INVALID"
    status = 400
    message = "provided digest did not match uploaded content"


class ManifestBlobUnknown(RegistryError):
    code = "MANIFEST_BLOB_UNKNOWN"
    status = 400
    message = "manifest references a blob unknown to the repository"


class ManifestInvalid(RegistryError):
    code = "MANIFEST_INVALID"
    status = 400
    message = "manifest invalid"


class ManifestUnknown(RegistryError):
    code = "MANIFEST_UNKNOWN"
    status = 404
    message = "manifest unknown"


class ManifestTooLarge(RegistryError):
    code = "MANIFEST_INVALID"
    status = 413
    message = "manifest too large"


class NameInvalid(RegistryError):
    code = "NAME_INVALID"
    status = 400
    message = "invalid repository name"


class NameUnknown(RegistryError):
    code = "NAME_UNKNOWN"
    status = 404
    message = "repository name not known to registry"


class SizeInvalid(RegistryError):
    code = "SIZE_INVALID"
    status = 400
    message = "provided length did not match content length"


class TagInvalid(RegistryError):
    code = "TAG_INVALID"
    status = 400
    message = "invalid tag"


class RangeInvalid(RegistryError):
    code = "RANGE_INVALID"
    status = 416
    message = "invalid content range"


class PaginationInvalid(RegistryError):
    code = "PAGINATION_NUMBER_INVALID"
    status = 400
    message = "invalid number of results requested"


class Unauthorized(RegistryError):
    code = "UNAUTHORIZED"
    status = 401
    message = "authentication required"


class Denied(RegistryError):
    code = "DENIED"
    status = 403
    message = "requested access to the resource is denied"


class Unsupported(RegistryError):
    code = "UNSUPPORTED"
    status = 405
    message = "the operation is unsupported"


class TooManyRequests(RegistryError):
    code = "TOOMANYREQUESTS"
    status = 429
    message = "too many requests"


class TokenRequestInvalid(RegistryError):
    code = "TOKEN_REQUEST_INVALID"
    status = 400
    message = "invalid token request"


class EndpointUnknown(RegistryError):
    code = "NOT_FOUND"
    status = 404
    message = "no such endpoint"


class ResourceUnknown(RegistryError):
    """A user, organization, team, token or robot the management API does not know."""

    code = "NOT_FOUND"
    status = 404
    message = "resource unknown"


class RequestInvalid(RegistryError):
    """A management API request whose body or parameters are malformed."""

    code = "REQUEST_INVALID"
    status = 400
    message = "invalid request"


class Conflict(RegistryError):
    code = "CONFLICT"
    status = 409
    message = "the resource exists already"


class TagImmutable(RegistryError):
    """A push that would move, or a delete that would remove, a tag an immutability rule
    protects. 409, not 403: the client may do this to other tags; it is the tag's state that
    conflicts (pushing the same digest again is accepted)."""

    code = "TAG_IMMUTABLE"
    status = 409
    message = "tag is immutable"


class QuotaExceeded(RegistryError):
    """A blob that would take a namespace or repository over its storage quota. DENIED and
    403 as Harbor answers: clients show "denied: <message>" and do not retry, where a 5xx
    (507) would be retried and 413 speaks of the request's size, not the store's."""

    code = "DENIED"
    status = 403
    message = "storage quota exceeded"


class Unavailable(RegistryError):
    code = "UNAVAILABLE"
    status = 503
    message = "service unavailable"


def error_table() -> list[type[RegistryError]]:
    """Every declared error class, for documentation and tests."""
    return sorted(RegistryError.__subclasses__(), key=lambda c: c.__name__)
