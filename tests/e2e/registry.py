"""A tiny registry client on httpx, and builders for the documents the tests push.

Upload locations are treated as opaque, as the spec asks: they are resolved against the
server's URL (absolute or relative both work) and query parameters are merged into them, never
replacing what the server put there.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = [
    "ALL_MANIFEST_TYPES",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "EMPTY_CONFIG",
    "EMPTY_DIGEST",
    "EMPTY_MEDIA_TYPE",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_MANIFEST",
    "Image",
    "RawResponse",
    "RegistryClient",
    "assert_error",
    "descriptor",
    "digest_of",
    "image_manifest",
    "index_manifest",
    "raw_request",
    "upload_end",
]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_CONFIG = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
ALL_MANIFEST_TYPES = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST])


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


def image_manifest(
    config: Mapping[str, Any],
    layers: Iterable[Mapping[str, Any]] = (),
    *,
    media_type: str = OCI_MANIFEST,
    artifact_type: str | None = None,
    subject: Mapping[str, Any] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> bytes:
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
    if artifact_type is not None:
        doc["artifactType"] = artifact_type
    doc["config"] = dict(config)
    doc["layers"] = [dict(layer) for layer in layers]
    if subject is not None:
        doc["subject"] = dict(subject)
    if annotations is not None:
        doc["annotations"] = dict(annotations)
    return json.dumps(doc).encode()


def index_manifest(
    manifests: Iterable[Mapping[str, Any]],
    *,
    media_type: str = OCI_INDEX,
    artifact_type: str | None = None,
    subject: Mapping[str, Any] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> bytes:
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
    if artifact_type is not None:
        doc["artifactType"] = artifact_type
    doc["manifests"] = [dict(m) for m in manifests]
    if subject is not None:
        doc["subject"] = dict(subject)
    if annotations is not None:
        doc["annotations"] = dict(annotations)
    return json.dumps(doc).encode()


def upload_end(range_header: str) -> int:
    """The last byte offset of an upload ``Range: 0-<end>`` header."""
    start, _, end = range_header.partition("-")
    assert start == "0", f"malformed upload Range header: {range_header!r}"
    assert end.isdigit(), f"malformed upload Range header: {range_header!r}"
    return int(end)


def assert_error(response: httpx.Response, status: int, *codes: str) -> list[dict[str, Any]]:
    """Check the status and the spec's ``{"errors": [{"code", "message"}]}`` envelope."""
    request = f"{response.request.method} {str(response.request.url)[:200]}"
    assert response.status_code == status, (
        f"{request}: expected {status}, got {response.status_code}: {response.text[:500]}"
    )
    if response.request.method == "HEAD":
        return []
    try:
        body = response.json()
    except ValueError as exc:
        raise AssertionError(f"{request}: error body is not JSON: {response.text[:500]!r}") from exc
    errors = body.get("errors") if isinstance(body, dict) else None
    assert isinstance(errors, list), f"{request}: no errors list in {body!r}"
    assert errors, f"{request}: empty errors list"
    for entry in errors:
        assert isinstance(entry, dict), entry
        assert isinstance(entry.get("code"), str), entry
        assert isinstance(entry.get("message"), str), entry
    if codes:
        found = {entry["code"] for entry in errors}
        assert found & set(codes), f"{request}: expected one of {codes}, got {sorted(found)}"
    return errors


@dataclass(frozen=True)
class Image:
    """A manifest pushed with its blobs."""

    repo: str
    digest: str
    body: bytes
    media_type: str
    blobs: dict[str, bytes] = field(default_factory=dict)


class RegistryClient:
    """A thin synchronous client: each method is one protocol step the spec names."""

    def __init__(self, url: str, *, verify: Any = True, keepalive: bool = True) -> None:
        self.url = url.rstrip("/")
        limits = httpx.Limits() if keepalive else httpx.Limits(max_keepalive_connections=0)
        self.http = httpx.Client(base_url=self.url, timeout=60.0, verify=verify, limits=limits)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # URLs -----------------------------------------------------------------------------------
    def resolve(self, location: str, **params: str) -> httpx.URL:
        """An absolute URL from a ``Location`` header, with ``params`` added to its query."""
        url = httpx.URL(self.url + "/").join(location)
        return url.copy_merge_params(params) if params else url

    def request(self, method: str, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, url, **kwargs)

    # Blobs ----------------------------------------------------------------------------------
    def start_upload(self, repo: str, **params: str) -> httpx.Response:
        response = self.http.post(
            f"/v2/{repo}/blobs/uploads/", params=params, headers={"Content-Length": "0"}
        )
        assert response.status_code == 202, response.text
        return response

    def push_blob(self, repo: str, data: bytes, *, algorithm: str = "sha256") -> str:
        """POST then PUT, the monolithic upload every registry supports."""
        digest = digest_of(data, algorithm)
        location = self.start_upload(repo).headers["Location"]
        response = self.http.put(
            self.resolve(location, digest=digest),
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert response.status_code == 201, response.text
        return digest

    def patch_chunk(self, location: str, chunk: bytes, offset: int) -> httpx.Response:
        return self.http.patch(
            self.resolve(location),
            content=chunk,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
            },
        )

    def push_blob_chunked(
        self,
        repo: str,
        data: bytes,
        chunk_size: int,
        *,
        algorithm: str = "sha256",
        last_in_put: bool = False,
    ) -> str:
        digest = digest_of(data, algorithm)
        location = self.start_upload(repo).headers["Location"]
        chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
        final = chunks.pop() if last_in_put and chunks else b""
        offset = 0
        for chunk in chunks:
            response = self.patch_chunk(location, chunk, offset)
            assert response.status_code == 202, response.text
            offset += len(chunk)
            assert upload_end(response.headers["Range"]) == offset - 1
            location = response.headers["Location"]
        headers = {"Content-Type": "application/octet-stream"}
        if final:
            headers["Content-Range"] = f"{offset}-{offset + len(final) - 1}"
        response = self.http.put(
            self.resolve(location, digest=digest), content=final, headers=headers
        )
        assert response.status_code == 201, response.text
        return digest

    def get_blob(self, repo: str, digest: str, **headers: str) -> httpx.Response:
        return self.http.get(f"/v2/{repo}/blobs/{digest}", headers=headers)

    def blob_exists(self, repo: str, digest: str) -> bool:
        return self.http.head(f"/v2/{repo}/blobs/{digest}").status_code == 200

    # Manifests ------------------------------------------------------------------------------
    def put_manifest(
        self, repo: str, reference: str, body: bytes, media_type: str = OCI_MANIFEST
    ) -> httpx.Response:
        return self.http.put(
            f"/v2/{repo}/manifests/{reference}", content=body, headers={"Content-Type": media_type}
        )

    def push_manifest(
        self, repo: str, reference: str, body: bytes, media_type: str = OCI_MANIFEST
    ) -> str:
        response = self.put_manifest(repo, reference, body, media_type)
        assert response.status_code == 201, response.text
        assert response.headers["Docker-Content-Digest"] == digest_of(body)
        return digest_of(body)

    def get_manifest(
        self, repo: str, reference: str, *, accept: str | None = ALL_MANIFEST_TYPES
    ) -> httpx.Response:
        headers = {"Accept": accept} if accept is not None else {}
        return self.http.get(f"/v2/{repo}/manifests/{reference}", headers=headers)

    def push_image(
        self,
        repo: str,
        tag: str | None = None,
        *,
        layers: int = 1,
        media_type: str = OCI_MANIFEST,
        **manifest_fields: Any,
    ) -> Image:
        """Push a config, ``layers`` random layers and their manifest (by tag, or by digest)."""
        docker = media_type == DOCKER_MANIFEST
        config = json.dumps(
            {"architecture": "amd64", "os": "linux", "nonce": os.urandom(8).hex()}
        ).encode()
        blobs = {self.push_blob(repo, config): config}
        layer_descs = []
        for _ in range(layers):
            layer = os.urandom(512)
            blobs[self.push_blob(repo, layer)] = layer
            layer_descs.append(descriptor(DOCKER_LAYER if docker else OCI_LAYER, layer))
        body = image_manifest(
            descriptor(DOCKER_CONFIG if docker else OCI_CONFIG, config),
            layer_descs,
            media_type=media_type,
            **manifest_fields,
        )
        digest = self.push_manifest(repo, tag or digest_of(body), body, media_type)
        return Image(repo, digest, body, media_type, blobs)


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def errors(self) -> list[dict[str, Any]]:
        """The error envelope's entries; fails unless the body is one."""
        body = json.loads(self.body)
        assert isinstance(body, dict), body
        assert isinstance(body.get("errors"), list), body
        assert body["errors"], body
        for entry in body["errors"]:
            assert isinstance(entry.get("code"), str)
            assert isinstance(entry.get("message"), str)
        return list(body["errors"])


def raw_request(url: str, request: bytes, *, timeout: float = 10.0) -> RawResponse:
    """Send exact bytes (paths no client would normalise, broken framing) and read one reply.

    The reply is read until the server closes the connection, so callers send
    ``Connection: close``.
    """
    parsed = httpx.URL(url)
    assert parsed.host
    assert parsed.port
    with socket.create_connection((parsed.host, parsed.port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        raise ConnectionAbortedError("the server closed the connection without a reply")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1."), f"no HTTP reply: {data[:200]!r}"
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    return RawResponse(status, headers, body)


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)
