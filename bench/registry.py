"""Registry API calls the workloads make, on top of :mod:`httpclient`.

Every call checks the status code the distribution spec requires, so a server that answers
wrongly fails the benchmark instead of looking fast.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from httpclient import Connection, FileBody, HttpError, Response, Sink

__all__ = ["BlobFile", "RegistryClient", "RegistryError", "make_blob_file"]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST_ACCEPT = ", ".join(
    [
        OCI_MANIFEST,
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5


class RegistryError(Exception):
    """The registry answered something the spec does not allow."""


@dataclass(frozen=True, slots=True)
class BlobFile:
    """Random content kept on disk, so that 1 GiB never sits in the benchmark's memory."""

    path: Path
    size: int
    digest: str


def make_blob_file(path: Path, size: int) -> BlobFile:
    hasher = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            block = os.urandom(min(left, 8 << 20))
            hasher.update(block)
            out.write(block)
            left -= len(block)
    return BlobFile(path, size, f"sha256:{hasher.hexdigest()}")


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _expect(response: Response, what: str, *statuses: int) -> Response:
    if response.status not in statuses:
        detail = response.body[:300].decode("utf-8", "replace")
        raise RegistryError(f"{what}: HTTP {response.status} (wanted {statuses}) {detail}")
    return response


def _with_digest(location: str, digest: str) -> str:
    separator = "&" if "?" in location else "?"
    return f"{location}{separator}digest={quote(digest, safe='')}"


class RegistryClient:
    def __init__(self, host: str, port: int) -> None:
        self.conn = Connection(host, port)
        # Connections to where blob reads were redirected (object storage), by host and port.
        self._elsewhere: dict[tuple[str, int], Connection] = {}

    def close(self) -> None:
        self.conn.close()
        for conn in self._elsewhere.values():
            conn.close()
        self._elsewhere.clear()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ping(self) -> bool:
        try:
            return self.conn.request("GET", "/v2/").status == 200
        except (OSError, HttpError):
            self.conn.close()
            return False

    # -- uploads ------------------------------------------------------------------------------

    def _location(self, response: Response) -> str:
        location = response.header("location")
        if not location:
            raise RegistryError(f"HTTP {response.status} without a Location header")
        parts = urlsplit(location)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def start_upload(self, repo: str) -> str:
        response = self.conn.request("POST", f"/v2/{repo}/blobs/uploads/")
        return self._location(_expect(response, "start upload", 202))

    def _finish(self, response: Response, digest: str) -> None:
        _expect(response, "finish upload", 201)
        echoed = response.header("docker-content-digest")
        if echoed is not None and echoed != digest:
            raise RegistryError(f"upload of {digest} answered with digest {echoed}")

    def push_file(self, repo: str, blob: BlobFile) -> None:
        """Monolithic push: POST, then one PUT whose body streams from the file."""
        location = self.start_upload(repo)
        with blob.path.open("rb") as f:
            response = self.conn.request(
                "PUT",
                _with_digest(location, blob.digest),
                {"Content-Type": "application/octet-stream"},
                FileBody(f, 0, blob.size),
            )
        self._finish(response, blob.digest)

    def push_file_chunked(self, repo: str, blob: BlobFile, chunk: int) -> None:
        """POST, one PATCH per ``chunk`` bytes, then a PUT without body."""
        location = self.start_upload(repo)
        with blob.path.open("rb") as f:
            for start in range(0, blob.size, chunk):
                count = min(chunk, blob.size - start)
                response = self.conn.request(
                    "PATCH",
                    location,
                    {
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{start}-{start + count - 1}",
                    },
                    FileBody(f, start, count),
                )
                _expect(response, f"PATCH at {start}", 202)
                received = response.header("range")
                if received is not None and received != f"0-{start + count - 1}":
                    raise RegistryError(f"PATCH at {start} answered Range: {received}")
                location = self._location(response)
        self._finish(self.conn.request("PUT", _with_digest(location, blob.digest)), blob.digest)

    def push_bytes(self, repo: str, data: bytes) -> str:
        digest = sha256(data)
        location = self.start_upload(repo)
        response = self.conn.request(
            "PUT",
            _with_digest(location, digest),
            {"Content-Type": "application/octet-stream"},
            data,
        )
        self._finish(response, digest)
        return digest

    def put_manifest(self, repo: str, reference: str, payload: bytes) -> str:
        response = self.conn.request(
            "PUT", f"/v2/{repo}/manifests/{reference}", {"Content-Type": OCI_MANIFEST}, payload
        )
        _expect(response, f"put manifest {repo}:{reference}", 201)
        return sha256(payload)

    # -- reads --------------------------------------------------------------------------------

    def _connection_to(self, url: str) -> tuple[Connection, str]:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        if not parts.scheme:
            return self.conn, target
        if parts.scheme != "http" or parts.hostname is None:
            raise RegistryError(f"cannot follow a redirect to {url}")
        where = (parts.hostname, parts.port or 80)
        if where == (self.conn.host, self.conn.port):
            return self.conn, target
        if where not in self._elsewhere:
            self._elsewhere[where] = Connection(*where)
        return self._elsewhere[where], target

    def read(
        self, method: str, target: str, accept: str | None = None, sink: Sink | None = None
    ) -> tuple[Response, bool]:
        """GET or HEAD ``target``, following redirects as a client does (to object storage,
        say): the final response, and whether it was redirected."""
        headers = {"Accept": accept} if accept else None
        response = self.conn.request(method, target, headers, sink=sink)
        redirected = False
        for _ in range(_MAX_REDIRECTS):
            if response.status not in _REDIRECTS:
                return response, redirected
            location = response.header("location")
            if not location:
                raise RegistryError(f"{method} {target}: HTTP {response.status} without Location")
            conn, target = self._connection_to(location)
            response = conn.request(method, target, sink=sink)
            redirected = True
        raise RegistryError(f"{method} {target}: more than {_MAX_REDIRECTS} redirects")

    def pull(self, repo: str, blob: BlobFile, sink: Sink | None = None) -> bool:
        """GET a blob; its bytes go to ``sink`` (or are only counted). True if the registry
        redirected the read elsewhere."""
        response, redirected = self.read(
            "GET", f"/v2/{repo}/blobs/{blob.digest}", sink=sink or _discard
        )
        _expect(response, f"pull {blob.digest}", 200)
        if response.length != blob.size:
            raise RegistryError(f"pull of {blob.digest}: {response.length} of {blob.size} bytes")
        return redirected

    def verify_pull(self, repo: str, blob: BlobFile) -> None:
        """Pull once more and check the content digest (kept out of any timed part)."""
        hasher = hashlib.sha256()
        self.pull(repo, blob, hasher.update)
        got = f"sha256:{hasher.hexdigest()}"
        if got != blob.digest:
            raise RegistryError(f"pulled content of {blob.digest} hashes to {got}")

    def get_manifest(self, repo: str, reference: str) -> Response:
        response = self.conn.request(
            "GET", f"/v2/{repo}/manifests/{reference}", {"Accept": MANIFEST_ACCEPT}
        )
        return _expect(response, f"get manifest {repo}:{reference}", 200)

    def head(self, target: str, accept: str | None = None) -> Response:
        response, _ = self.read("HEAD", target, accept)
        return _expect(response, f"HEAD {target}", 200)

    def get_blob_bytes(self, repo: str, digest: str) -> bytes:
        response, _ = self.read("GET", f"/v2/{repo}/blobs/{digest}")
        return _expect(response, f"get blob {digest}", 200).body

    def tags(self, repo: str) -> list[str]:
        response = _expect(self.conn.request("GET", f"/v2/{repo}/tags/list"), "tags list", 200)
        tags = json.loads(response.body).get("tags") or []
        return [str(tag) for tag in tags]


def _discard(_: memoryview) -> None:
    pass


def image_manifest(config: tuple[str, int], layers: list[tuple[str, int]]) -> bytes:
    """An OCI image manifest for a config and layers given as (digest, size)."""
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config[0], "size": config[1]},
        "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": s} for d, s in layers],
    }
    return json.dumps(document, separators=(",", ":")).encode()


def image_config(layer_digests: list[str], label: str) -> bytes:
    document = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": {"bench": label}},
        "rootfs": {"type": "layers", "diff_ids": layer_digests},
    }
    return json.dumps(document, separators=(",", ":")).encode()
