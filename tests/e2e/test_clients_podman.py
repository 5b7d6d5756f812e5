"""podman against a real server: an image pushed and pulled back into fresh storage, and a
manifest list assembled locally and pushed with all its images."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .clients import Podman, Skopeo, host_of
from .conftest import RegistryServer
from .images import INDEX_TYPES, Image, build_image, read_layer, sha256, write_layout
from .registry import RegistryClient

pytestmark = pytest.mark.clients

PodmanFactory = Callable[[str], Podman]


@pytest.fixture
def podman_at(tmp_path: Path) -> Iterator[PodmanFactory]:
    """``podman_at(name)``: a podman with storage of its own under ``tmp_path/name``."""
    with contextlib.ExitStack() as stack:

        def make(name: str) -> Podman:
            return stack.enter_context(Podman.session(tmp_path / name))

        yield make


def _image(repo: str, architecture: str) -> Image:
    return build_image(
        [{"etc/os-release": f"ID={architecture}\n".encode(), "srv/repo": repo.encode()}],
        architecture=architecture,
    )


def _load(podman: Podman, layout: Path, tag: str) -> str:
    """Pull ``tag`` of a local OCI layout into podman's storage; its image ID."""
    return podman.text("pull", "--quiet", f"oci:{layout}:{tag}").splitlines()[-1]


def test_push_then_pull_into_fresh_storage(
    registry: RegistryServer,
    client: RegistryClient,
    podman_at: PodmanFactory,
    repo: str,
    tmp_path: Path,
) -> None:
    host = host_of(registry.url)
    image = _image(repo, "amd64")
    layout = write_layout(tmp_path / "layout", {"v1": image})
    pusher = podman_at("pusher")
    image_id = _load(pusher, layout, "v1")
    # The image ID is the config digest: the config came through unchanged.
    assert f"sha256:{image_id}" == image.config.digest

    digest_file = tmp_path / "digest"
    pusher(
        "push",
        "--quiet",
        "--tls-verify=false",
        "--digestfile",
        str(digest_file),
        image_id,
        f"docker://{host}/{repo}:v1",
    )
    pushed_digest = digest_file.read_text().strip()
    served = client.get_manifest(repo, "v1")
    assert served.status_code == 200, served.text
    assert served.headers["Docker-Content-Digest"] == pushed_digest == sha256(served.content)
    assert served.json()["config"]["digest"] == image.config.digest

    puller = podman_at("puller")
    assert puller.text("images", "--quiet") == ""
    puller("pull", "--quiet", "--tls-verify=false", f"{host}/{repo}:v1")
    (info,) = json.loads(puller("image", "inspect", f"{host}/{repo}:v1"))
    assert info["Id"] == image_id
    assert info["Digest"] == pushed_digest
    assert f"{host}/{repo}@{pushed_digest}" in info["RepoDigests"]
    assert info["RootFS"]["Layers"] == image.diff_ids
    assert info["Architecture"] == "amd64"

    saved = tmp_path / "saved"
    puller("save", "--quiet", "--format", "oci-dir", "-o", str(saved), f"{host}/{repo}:v1")
    (entry,) = json.loads((saved / "index.json").read_text())["manifests"]
    manifest = json.loads(_blob(saved, entry["digest"]))
    (layer,) = manifest["layers"]
    assert read_layer(_blob(saved, layer["digest"])) == {
        "etc/os-release": b"ID=amd64\n",
        "srv/repo": repo.encode(),
    }


def _blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def test_manifest_list_push_all(
    registry: RegistryServer,
    client: RegistryClient,
    podman_at: PodmanFactory,
    repo: str,
    tmp_path: Path,
) -> None:
    host = host_of(registry.url)
    amd64, arm64 = _image(repo, "amd64"), _image(repo, "arm64")
    layout = write_layout(tmp_path / "layout", {"amd64": amd64, "arm64": arm64})
    podman = podman_at("podman")
    ids = {arch: _load(podman, layout, arch) for arch in ("amd64", "arm64")}

    podman("manifest", "create", "multi")
    podman(
        "manifest",
        "add",
        "--arch",
        "amd64",
        "--os",
        "linux",
        "multi",
        f"containers-storage:{ids['amd64']}",
    )
    podman(
        "manifest",
        "add",
        "--arch",
        "arm64",
        "--os",
        "linux",
        "--variant",
        "v8",
        "multi",
        f"containers-storage:{ids['arm64']}",
    )
    podman(
        "manifest",
        "push",
        "--quiet",
        "--all",
        "--tls-verify=false",
        "multi",
        f"docker://{host}/{repo}:multi",
    )

    skopeo = Skopeo(host, tmp_path / "skopeo")
    raw = skopeo.inspect_raw(skopeo.ref(repo, "multi"))
    served = client.get_manifest(repo, "multi")
    assert served.status_code == 200
    assert served.content == raw
    assert served.headers["Docker-Content-Digest"] == sha256(raw)
    index = json.loads(raw)
    assert index["mediaType"] in INDEX_TYPES
    assert served.headers["Content-Type"] == index["mediaType"]
    platforms = {
        (entry["platform"]["architecture"], entry["platform"]["os"]): entry
        for entry in index["manifests"]
    }
    assert sorted(platforms) == [("amd64", "linux"), ("arm64", "linux")]
    assert platforms["arm64", "linux"]["platform"].get("variant") == "v8"
    for (architecture, _), entry in platforms.items():
        child = client.get_manifest(repo, entry["digest"])
        assert child.status_code == 200, child.text
        assert sha256(child.content) == entry["digest"]
        assert len(child.content) == entry["size"]
        assert child.headers["Content-Type"] == entry["mediaType"]
        expected = amd64 if architecture == "amd64" else arm64
        assert json.loads(child.content)["config"]["digest"] == expected.config.digest
