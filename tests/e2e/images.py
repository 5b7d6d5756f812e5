"""Container images built locally, with no network: layers, configs, manifests, indexes, and
OCI image layouts on disk that the real clients read (``oci:DIR:TAG``) and write.

Everything is deterministic for given inputs (tar headers and gzip timestamps are fixed), so a
digest computed here is the digest a client must reproduce when it copies the bytes unchanged.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = [
    "DOCKER_CONFIG",
    "DOCKER_LAYER",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "INDEX_TYPES",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_MANIFEST",
    "REF_NAME",
    "Blob",
    "Image",
    "Index",
    "Layout",
    "build_image",
    "build_index",
    "read_layer",
    "sha256",
    "tar_files",
    "write_layout",
]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
REF_NAME = "org.opencontainers.image.ref.name"
CREATED = "2024-01-01T00:00:00Z"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, indent=2, sort_keys=True).encode()


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return sha256(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": len(self.data),
            **extra,
        }


@dataclass(frozen=True)
class Image:
    """One platform's image: a manifest, its config and its gzip layers."""

    manifest: Blob
    config: Blob
    layers: tuple[Blob, ...]
    architecture: str
    os: str

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def blobs(self) -> dict[str, bytes]:
        """Every blob the manifest references, by digest."""
        return {blob.digest: blob.data for blob in (self.config, *self.layers)}

    @property
    def diff_ids(self) -> list[str]:
        return list(json.loads(self.config.data)["rootfs"]["diff_ids"])

    def platform(self) -> dict[str, str]:
        return {"architecture": self.architecture, "os": self.os}


@dataclass(frozen=True)
class Index:
    """A multi-platform OCI image index and the images it lists."""

    manifest: Blob
    images: tuple[Image, ...]

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def blobs(self) -> dict[str, bytes]:
        """The child manifests and all their blobs, by digest (the index itself excluded)."""
        out: dict[str, bytes] = {}
        for image in self.images:
            out[image.digest] = image.manifest.data
            out.update(image.blobs)
        return out


def tar_files(files: Mapping[str, bytes]) -> bytes:
    """An uncompressed tar of ``files`` (path -> content) with fixed metadata; the parent
    directories of nested paths get their own entries, as a real layer has."""
    buffer = io.BytesIO()
    seen: set[str] = set()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            path = PurePosixPath(name.lstrip("/"))
            for parent in reversed(path.parents[:-1]):
                if str(parent) not in seen:
                    seen.add(str(parent))
                    tar.addfile(_member(f"{parent}/", tarfile.DIRTYPE, 0o755, 0))
            content = files[name]
            tar.addfile(
                _member(str(path), tarfile.REGTYPE, 0o644, len(content)), io.BytesIO(content)
            )
    return buffer.getvalue()


def _member(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = 1_700_000_000
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def read_layer(data: bytes) -> dict[str, bytes]:
    """The regular files of a layer (gzip or plain tar), by path without a leading ``./``."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar:
            if member.isfile():
                extracted = tar.extractfile(member)
                assert extracted is not None
                out[member.name.removeprefix("./")] = extracted.read()
    return out


def build_image(
    layers: Sequence[Mapping[str, bytes]],
    *,
    architecture: str = "amd64",
    os: str = "linux",
    labels: Mapping[str, str] | None = None,
) -> Image:
    """An OCI image whose layers hold ``layers`` (one mapping of path -> bytes per layer)."""
    tars = [tar_files(files) for files in layers]
    blobs = tuple(Blob(OCI_LAYER, gzip.compress(tar, mtime=0)) for tar in tars)
    config = Blob(
        OCI_CONFIG,
        _json(
            {
                "created": CREATED,
                "architecture": architecture,
                "os": os,
                "config": {"Labels": dict(labels or {}), "Cmd": ["/bin/true"]},
                "rootfs": {"type": "layers", "diff_ids": [sha256(tar) for tar in tars]},
                "history": [{"created": CREATED, "created_by": "images.py"} for _ in tars],
            }
        ),
    )
    manifest = Blob(
        OCI_MANIFEST,
        _json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config.descriptor(),
                "layers": [blob.descriptor() for blob in blobs],
            }
        ),
    )
    return Image(manifest, config, blobs, architecture, os)


def build_index(images: Iterable[Image]) -> Index:
    listed = tuple(images)
    manifest = Blob(
        OCI_INDEX,
        _json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    image.manifest.descriptor(platform=image.platform()) for image in listed
                ],
            }
        ),
    )
    return Index(manifest, listed)


def write_layout(path: Path, tags: Mapping[str, Image | Index]) -> Path:
    """Write an OCI image layout holding each of ``tags`` (tag -> image or index)."""
    blobs_dir = path / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for tag, content in tags.items():
        blobs = {content.digest: content.manifest.data, **content.blobs}
        for digest, data in blobs.items():
            (blobs_dir / digest.removeprefix("sha256:")).write_bytes(data)
        entries.append(content.manifest.descriptor(annotations={REF_NAME: tag}))
    (path / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    (path / "index.json").write_text(json.dumps(index))
    return path


@dataclass(frozen=True)
class Layout:
    """An OCI image layout on disk, as a client wrote it."""

    path: Path

    def index(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((self.path / "index.json").read_text())
        return doc

    def descriptor(self, tag: str) -> dict[str, Any]:
        """The ``index.json`` entry named ``tag``."""
        for entry in self.index()["manifests"]:
            if entry.get("annotations", {}).get(REF_NAME) == tag:
                return dict(entry)
        raise AssertionError(f"no {tag!r} in {self.path}/index.json: {self.index()}")

    def blob(self, digest: str) -> bytes:
        algorithm, _, hex_ = digest.partition(":")
        return (self.path / "blobs" / algorithm / hex_).read_bytes()

    def digests(self) -> set[str]:
        """Every blob in the layout, verified against its name."""
        out = set()
        for file in (self.path / "blobs" / "sha256").iterdir():
            digest = f"sha256:{file.name}"
            assert sha256(file.read_bytes()) == digest, f"{file} does not match its name"
            out.add(digest)
        return out
