"""A small image whose config has real-looking history, environment, entrypoint and labels,
written as an OCI layout for skopeo to push."""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from pathlib import Path

import httpx

from e2e.images import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    Blob,
    Image,
    sha256,
    tar_files,
    write_layout,
)

COMMANDS = (
    "/bin/sh -c #(nop) ADD file:0a1b2c in / ",
    "RUN /bin/sh -c apk add --no-cache curl # buildkit",
)


def app_image(labels: Mapping[str, str], marker: str = "") -> Image:
    tars = [
        tar_files({"etc/os-release": f"NAME=test{marker}\n".encode()}),
        tar_files({"usr/bin/curl": b"#!/bin/sh\necho curl\n" * 200}),
    ]
    layers = tuple(Blob(OCI_LAYER, gzip.compress(t, mtime=0)) for t in tars)
    history = [
        {"created": "2024-01-01T00:00:00Z", "created_by": COMMANDS[0]},
        {
            "created": "2024-01-01T00:00:00Z",
            "created_by": "ENV APP_MODE=production",
            "empty_layer": True,
        },
        {"created": "2024-01-01T00:00:00Z", "created_by": COMMANDS[1]},
    ]
    config = Blob(
        OCI_CONFIG,
        json.dumps(
            {
                "created": "2024-01-01T00:00:00Z",
                "architecture": "amd64",
                "os": "linux",
                "config": {
                    "Env": ["PATH=/usr/bin:/bin", "APP_MODE=production"],
                    "Entrypoint": ["/usr/bin/curl"],
                    "Cmd": ["--help"],
                    "Labels": dict(labels),
                },
                "rootfs": {"type": "layers", "diff_ids": [sha256(t) for t in tars]},
                "history": history,
            },
            sort_keys=True,
        ).encode(),
    )
    manifest = Blob(
        OCI_MANIFEST,
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config.descriptor(),
                "layers": [layer.descriptor() for layer in layers],
            },
            sort_keys=True,
        ).encode(),
    )
    return Image(manifest, config, layers, "amd64", "linux")


def layout_with(path: Path, tags: Mapping[str, Image]) -> Path:
    return write_layout(path, dict(tags))


SBOM_TYPE = "application/vnd.example.sbom.v1+json"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"


def push_referrer(url: str, token: str, repository: str, subject: Image) -> str:
    """Push an SBOM-like artifact whose subject is ``subject``; its digest."""
    headers = {"Authorization": f"Bearer {token}"}
    empty = Blob(EMPTY_CONFIG, b"{}")
    layer = Blob("application/spdx+json", b'{"spdxVersion": "SPDX-2.3"}')
    for blob in (empty, layer):
        response = httpx.post(
            f"{url}/v2/{repository}/blobs/uploads/",
            params={"digest": blob.digest},
            content=blob.data,
            headers={**headers, "Content-Type": "application/octet-stream"},
        )
        assert response.status_code == 201, response.text
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": SBOM_TYPE,
            "config": empty.descriptor(),
            "layers": [layer.descriptor()],
            "subject": subject.manifest.descriptor(),
        }
    ).encode()
    digest = sha256(manifest)
    response = httpx.put(
        f"{url}/v2/{repository}/manifests/{digest}",
        content=manifest,
        headers={**headers, "Content-Type": OCI_MANIFEST},
    )
    assert response.status_code == 201, response.text
    return digest
