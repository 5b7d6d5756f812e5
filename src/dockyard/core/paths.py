"""Where content lives in the storage driver."""

from __future__ import annotations

from dockyard.digest import Digest

__all__ = ["UPLOADS", "blob_path", "upload_dir", "upload_path"]

UPLOADS = "uploads"


def blob_path(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.encoded[:2]}/{digest.encoded}/data"


def upload_dir(upload_id: str) -> str:
    return f"{UPLOADS}/{upload_id}"


def upload_path(upload_id: str) -> str:
    return f"{UPLOADS}/{upload_id}/data"
