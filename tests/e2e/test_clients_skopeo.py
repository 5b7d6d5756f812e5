"""skopeo against a real server: copies in and out bit for bit, multi-arch indexes, Docker
schema2, inspect, list-tags, delete, and a cross-repository copy that mounts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .clients import AccessLine, CommandFailed, Skopeo, host_of, wait_for_log
from .conftest import RegistryServer
from .images import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Image,
    Layout,
    build_image,
    build_index,
    sha256,
    write_layout,
)
from .registry import RegistryClient, assert_error

pytestmark = pytest.mark.clients


@pytest.fixture
def skopeo(registry: RegistryServer, tmp_path: Path) -> Skopeo:
    return Skopeo(host_of(registry.url), tmp_path / "skopeo")


def _image(repo: str, architecture: str = "amd64") -> Image:
    """Two layers of content unique to this test, one nested and one binary."""
    return build_image(
        [
            {"etc/motd": f"hello from {repo} on {architecture}\n".encode()},
            {"data/blob.bin": os.urandom(64 * 1024), "README": b"second layer\n"},
        ],
        architecture=architecture,
        labels={"org.example.repo": repo},
    )


def _assert_served(client: RegistryClient, repo: str, reference: str, image: Image) -> None:
    """The registry holds ``image`` under ``reference``, byte for byte."""
    response = client.get_manifest(repo, reference)
    assert response.status_code == 200, response.text
    assert response.content == image.manifest.data
    assert response.headers["Docker-Content-Digest"] == image.digest
    assert response.headers["Content-Type"] == image.manifest.media_type
    for digest, data in image.blobs.items():
        blob = client.get_blob(repo, digest)
        assert blob.status_code == 200, f"{digest}: {blob.status_code}"
        assert blob.content == data, digest


def _logged(lines: list[AccessLine], method: str, path_prefix: str, status: int) -> bool:
    return any(
        line.method == method and line.path.startswith(path_prefix) and line.status == status
        for line in lines
    )


def _stored_blobs(registry: RegistryServer) -> list[Path]:
    """The blob files of the registry's filesystem storage (``.../blobs/<alg>/../data``)."""
    files = registry.root.rglob("data")
    return sorted(p.relative_to(registry.root) for p in files if "blobs" in p.parts)


def test_copy_oci_layout_in_and_out_bit_for_bit(
    skopeo: Skopeo, client: RegistryClient, repo: str, tmp_path: Path
) -> None:
    image = _image(repo)
    source = write_layout(tmp_path / "source", {"v1": image})

    skopeo.copy(f"oci:{source}:v1", skopeo.ref(repo, "v1"), "--preserve-digests")
    _assert_served(client, repo, "v1", image)

    out = Layout(tmp_path / "out")
    skopeo.copy(skopeo.ref(repo, "v1"), f"oci:{out.path}:back", "--preserve-digests")
    entry = out.descriptor("back")
    assert entry["digest"] == image.digest
    assert entry["mediaType"] == OCI_MANIFEST
    assert entry["size"] == len(image.manifest.data)
    assert out.digests() == {image.digest, *image.blobs}
    assert out.blob(image.digest) == image.manifest.data
    for digest, data in image.blobs.items():
        assert out.blob(digest) == data, digest


def test_copy_multi_arch_index_with_all(
    skopeo: Skopeo, client: RegistryClient, repo: str, tmp_path: Path
) -> None:
    amd64, arm64 = _image(repo, "amd64"), _image(repo, "arm64")
    index = build_index([amd64, arm64])
    source = write_layout(tmp_path / "source", {"multi": index})

    skopeo.copy(f"oci:{source}:multi", skopeo.ref(repo, "multi"), "--all", "--preserve-digests")
    response = client.get_manifest(repo, "multi")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == OCI_INDEX
    assert response.content == index.manifest.data
    assert response.headers["Docker-Content-Digest"] == index.digest
    for image in (amd64, arm64):
        _assert_served(client, repo, image.digest, image)

    out = Layout(tmp_path / "out")
    skopeo.copy(skopeo.ref(repo, "multi"), f"oci:{out.path}:multi", "--all", "--preserve-digests")
    assert out.descriptor("multi")["digest"] == index.digest
    assert out.digests() == {index.digest, *index.blobs}
    assert out.blob(index.digest) == index.manifest.data
    for digest, data in index.blobs.items():
        assert out.blob(digest) == data, digest


def test_copy_as_docker_schema2(
    skopeo: Skopeo, client: RegistryClient, repo: str, tmp_path: Path
) -> None:
    image = _image(repo)
    source = write_layout(tmp_path / "source", {"v1": image})

    skopeo.copy(f"oci:{source}:v1", skopeo.ref(repo, "v2s2"), "--format", "v2s2")
    response = client.get_manifest(repo, "v2s2", accept=DOCKER_MANIFEST)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == DOCKER_MANIFEST
    assert response.headers["Docker-Content-Digest"] == sha256(response.content)
    manifest = response.json()
    assert manifest["mediaType"] == DOCKER_MANIFEST
    assert manifest["config"]["mediaType"] == DOCKER_CONFIG
    # The conversion relabels the descriptors; the layer bytes are the same blobs.
    assert [layer["mediaType"] for layer in manifest["layers"]] == [DOCKER_LAYER] * 2
    assert [layer["digest"] for layer in manifest["layers"]] == [b.digest for b in image.layers]
    config = client.get_blob(repo, manifest["config"]["digest"])
    assert config.status_code == 200
    assert json.loads(config.content)["rootfs"]["diff_ids"] == image.diff_ids

    assert skopeo.inspect_raw(skopeo.ref(repo, "v2s2")) == response.content
    out = tmp_path / "dir"
    skopeo.copy(skopeo.ref(repo, "v2s2"), f"dir:{out}", "--preserve-digests")
    assert (out / "manifest.json").read_bytes() == response.content
    for layer in image.layers:
        assert (out / layer.digest.removeprefix("sha256:")).read_bytes() == layer.data
    config_file = out / manifest["config"]["digest"].removeprefix("sha256:")
    assert config_file.read_bytes() == config.content


def test_inspect_and_inspect_raw(
    skopeo: Skopeo, client: RegistryClient, repo: str, tmp_path: Path
) -> None:
    image = _image(repo)
    source = write_layout(tmp_path / "source", {"v1": image})
    skopeo.copy(f"oci:{source}:v1", skopeo.ref(repo, "v1"), "--preserve-digests")
    skopeo.copy(f"oci:{source}:v1", skopeo.ref(repo, "stable"), "--preserve-digests")

    info = skopeo.inspect(skopeo.ref(repo, "v1"))
    assert info["Digest"] == image.digest
    assert info["Architecture"] == "amd64"
    assert info["Os"] == "linux"
    assert info["Layers"] == [layer.digest for layer in image.layers]
    assert info["Labels"] == {"org.example.repo": repo}
    assert sorted(info["RepoTags"]) == ["stable", "v1"]
    assert info["Name"] == f"{skopeo.host}/{repo}"
    assert info["Created"] == "2024-01-01T00:00:00Z"

    assert skopeo.inspect_raw(skopeo.ref(repo, "v1")) == image.manifest.data
    assert skopeo.inspect_raw(skopeo.ref(repo, image.digest)) == image.manifest.data
    config = skopeo("inspect", "--tls-verify=false", "--config", "--raw", skopeo.ref(repo, "v1"))
    assert config == image.config.data


def test_list_tags(skopeo: Skopeo, repo: str, tmp_path: Path) -> None:
    image = _image(repo)
    source = write_layout(tmp_path / "source", {"v1": image})
    tags = ["latest", "1.1", "beta", "1.0"]
    for tag in tags:
        skopeo.copy(f"oci:{source}:v1", skopeo.ref(repo, tag), "--preserve-digests")

    listed = skopeo.list_tags(f"docker://{skopeo.host}/{repo}")
    assert listed["Repository"] == f"{skopeo.host}/{repo}"
    assert listed["Tags"] == sorted(tags)


def test_delete_removes_the_manifest(
    registry: RegistryServer, skopeo: Skopeo, client: RegistryClient, repo: str, tmp_path: Path
) -> None:
    assert registry.config["storage"]["delete"]["enabled"] is True
    doomed, kept = _image(repo, "amd64"), _image(repo, "arm64")
    source = write_layout(tmp_path / "source", {"doomed": doomed, "kept": kept})
    for tag in ("doomed", "kept"):
        skopeo.copy(f"oci:{source}:{tag}", skopeo.ref(repo, tag), "--preserve-digests")
    assert client.get_manifest(repo, doomed.digest).status_code == 200

    skopeo.delete(skopeo.ref(repo, "doomed"))

    assert_error(client.get_manifest(repo, doomed.digest), 404, "MANIFEST_UNKNOWN")
    assert_error(client.get_manifest(repo, "doomed"), 404, "MANIFEST_UNKNOWN")
    with pytest.raises(CommandFailed):
        skopeo.inspect_raw(skopeo.ref(repo, "doomed"))
    assert skopeo.list_tags(f"docker://{skopeo.host}/{repo}")["Tags"] == ["kept"]
    _assert_served(client, repo, "kept", kept)


def test_cross_repository_copy_mounts_layers(
    registry: RegistryServer,
    skopeo: Skopeo,
    client: RegistryClient,
    repo: str,
    tmp_path: Path,
) -> None:
    source_repo, dest_repo = f"{repo}-a", f"{repo}-b"
    image = _image(repo)
    source = write_layout(tmp_path / "source", {"v1": image})
    skopeo.copy(f"oci:{source}:v1", skopeo.ref(source_repo, "v1"), "--preserve-digests")
    # The config is tiny and is never offered for mounting; having it in the destination
    # already leaves the layers as the only blobs to bring over.
    assert client.push_blob(dest_repo, image.config.data) == image.config.digest
    for layer in image.layers:
        assert not client.blob_exists(dest_repo, layer.digest), "readable before the mount"
    stored_before = _stored_blobs(registry)
    assert stored_before, f"no blob files under {registry.root}"
    prefix = f"/v2/{dest_repo}/"
    logs = (registry.stdout_path, registry.stderr_path)
    # The lines of the requests above, so that only the copy's own are counted below.
    earlier = len(wait_for_log(logs, lambda lines: _logged(lines, "HEAD", prefix, 404)))

    skopeo.copy(skopeo.ref(source_repo, "v1"), skopeo.ref(dest_repo, "v1"), "--preserve-digests")

    lines = wait_for_log(logs, lambda lines: _logged(lines, "PUT", f"{prefix}manifests/v1", 201))
    dest_lines = [line for line in lines[earlier:] if line.path.startswith(prefix)]
    uploads = f"{prefix}blobs/uploads/"
    mounted = [
        line
        for line in dest_lines
        if (line.method, line.path, line.status) == ("POST", uploads, 201)
    ]
    byte_uploads = [
        line
        for line in dest_lines
        if line.method in ("PATCH", "PUT") and line.path.startswith(uploads)
    ]
    trace = "\n".join(f"{x.method} {x.path}?{x.query} {x.status}" for x in dest_lines)
    assert len(mounted) == len(image.layers), trace
    assert all("mount=" in line.query for line in mounted if line.query), trace
    assert byte_uploads == [], trace

    for layer in image.layers:
        blob = client.get_blob(dest_repo, layer.digest)
        assert blob.status_code == 200
        assert blob.content == layer.data
    _assert_served(client, dest_repo, "v1", image)
    # A mount links; it stores no second copy of any bytes.
    assert _stored_blobs(registry) == stored_before
