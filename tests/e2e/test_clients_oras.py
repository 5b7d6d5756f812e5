"""oras-py against a real server: artifacts pushed and pulled with identical bytes, and an
artifact pushed with a ``subject`` that the referrers API then lists."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from .clients import host_of
from .conftest import RegistryServer
from .images import OCI_INDEX, OCI_MANIFEST, sha256
from .registry import RegistryClient

oras_client = pytest.importorskip("oras.client", reason="pip install oras (the test extra)")
oras_oci = pytest.importorskip("oras.oci")

pytestmark = pytest.mark.clients

SBOM_CONFIG = "application/vnd.example.sbom.config.v1+json"
SBOM_LAYER = "application/vnd.example.sbom.v1+json"
TITLE = "org.opencontainers.image.title"


@pytest.fixture
def oras(registry: RegistryServer) -> Any:
    return oras_client.OrasClient(hostname=host_of(registry.url), insecure=True)


def _files(base: Path, contents: dict[str, bytes]) -> list[Path]:
    base.mkdir(parents=True)
    paths = []
    for name, data in contents.items():
        path = base / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def test_push_and_pull_files_round_trip(
    oras: Any, client: RegistryClient, registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    contents = {
        "notes.txt": f"artifact of {repo}\n".encode(),
        "payload.bin": os.urandom(300 * 1024),
        "empty.dat": b"",
    }
    paths = _files(tmp_path / "in", contents)
    target = f"{host_of(registry.url)}/{repo}:v1"

    response = oras.push(
        target=target,
        files=[str(path) for path in paths],
        disable_path_validation=True,
        manifest_annotations={"org.example.purpose": "round-trip"},
        quiet=True,
    )
    assert response.status_code == 201, response.text
    digest = response.headers["Docker-Content-Digest"]

    served = client.get_manifest(repo, "v1")
    assert served.status_code == 200
    assert sha256(served.content) == digest
    manifest = served.json()
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["annotations"] == {"org.example.purpose": "round-trip"}
    assert [layer["annotations"][TITLE] for layer in manifest["layers"]] == list(contents)
    assert [layer["digest"] for layer in manifest["layers"]] == [
        sha256(data) for data in contents.values()
    ]
    assert oras.get_tags(f"{host_of(registry.url)}/{repo}") == ["v1"]

    out = tmp_path / "out"
    pulled = oras.pull(target=target, outdir=str(out))
    assert sorted(Path(path).name for path in pulled) == sorted(contents)
    for name, data in contents.items():
        assert (out / name).read_bytes() == data, name


def test_push_with_subject_is_listed_by_referrers(
    oras: Any, client: RegistryClient, registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    host = host_of(registry.url)
    (image_file,) = _files(tmp_path / "image", {"app.bin": os.urandom(4096)})
    pushed = oras.push(
        target=f"{host}/{repo}:app",
        files=[str(image_file)],
        disable_path_validation=True,
        quiet=True,
    )
    assert pushed.status_code == 201, pushed.text
    subject_body = client.get_manifest(repo, "app").content
    subject = oras_oci.Subject(
        mediaType=OCI_MANIFEST, digest=sha256(subject_body), size=len(subject_body)
    )

    config = tmp_path / "sbom-config.json"
    config.write_text(json.dumps({"format": "spdx", "version": "2.3"}))
    sbom_data = json.dumps({"packages": [{"name": repo}]}).encode()
    (sbom_file,) = _files(tmp_path / "sbom", {"sbom.json": sbom_data})
    annotations = {"org.example.kind": "sbom"}
    response = oras.push(
        target=f"{host}/{repo}:sbom",
        files=[f"{sbom_file}:{SBOM_LAYER}"],
        disable_path_validation=True,
        manifest_config=f"{config}:{SBOM_CONFIG}",
        manifest_annotations=annotations,
        subject=subject,
        quiet=True,
    )
    assert response.status_code == 201, response.text
    assert response.headers.get("OCI-Subject") == subject.digest
    referrer_digest = response.headers["Docker-Content-Digest"]
    referrer_body = client.get_manifest(repo, referrer_digest).content
    assert json.loads(referrer_body)["subject"]["digest"] == subject.digest

    listing = client.request("GET", f"/v2/{repo}/referrers/{subject.digest}")
    assert listing.status_code == 200, listing.text
    assert listing.headers["Content-Type"].split(";")[0] == OCI_INDEX
    index = listing.json()
    assert index["mediaType"] == OCI_INDEX
    # No artifactType in the manifest: the referrers API reports the config's media type.
    assert index["manifests"] == [
        {
            "mediaType": OCI_MANIFEST,
            "digest": referrer_digest,
            "size": len(referrer_body),
            "artifactType": SBOM_CONFIG,
            "annotations": annotations,
        }
    ]
    filtered = client.request(
        "GET", f"/v2/{repo}/referrers/{subject.digest}", params={"artifactType": "x/none"}
    )
    assert filtered.status_code == 200
    assert filtered.json()["manifests"] == []

    out = tmp_path / "out"
    oras.pull(target=f"{host}/{repo}@{referrer_digest}", outdir=str(out))
    assert (out / "sbom.json").read_bytes() == sbom_data
