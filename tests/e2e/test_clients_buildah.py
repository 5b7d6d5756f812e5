"""buildah against a real server: an image built from a Containerfile, pushed, and pulled back
with skopeo into an OCI layout whose layers hold exactly the files that were copied in."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from .clients import Buildah, Skopeo, host_of
from .conftest import RegistryServer
from .images import OCI_MANIFEST, Layout, read_layer, sha256
from .registry import RegistryClient

pytestmark = pytest.mark.clients

CONTAINERFILE = """\
FROM scratch
COPY hello.txt /hello.txt
COPY data/ /srv/data/
"""


def test_build_push_and_pull_back(
    registry: RegistryServer, client: RegistryClient, repo: str, tmp_path: Path
) -> None:
    host = host_of(registry.url)
    context = tmp_path / "context"
    (context / "data").mkdir(parents=True)
    files = {
        "hello.txt": f"hello from {repo}\n".encode(),
        "srv/data/blob.bin": os.urandom(64 * 1024),
    }
    (context / "hello.txt").write_bytes(files["hello.txt"])
    (context / "data" / "blob.bin").write_bytes(files["srv/data/blob.bin"])
    (context / "Containerfile").write_text(CONTAINERFILE)

    with Buildah.session(tmp_path / "buildah") as buildah:
        image_id = buildah.text(
            "build",
            "--quiet",
            "--isolation",
            "chroot",
            "--tag",
            "localhost/built:v1",
            "--file",
            str(context / "Containerfile"),
            str(context),
        ).splitlines()[-1]
        digest_file = tmp_path / "digest"
        buildah(
            "push",
            "--quiet",
            "--tls-verify=false",
            "--digestfile",
            str(digest_file),
            "localhost/built:v1",
            f"docker://{host}/{repo}:v1",
        )
    pushed_digest = digest_file.read_text().strip()
    served = client.get_manifest(repo, "v1")
    assert served.status_code == 200, served.text
    assert served.headers["Docker-Content-Digest"] == pushed_digest == sha256(served.content)

    skopeo = Skopeo(host, tmp_path / "skopeo")
    out = Layout(tmp_path / "out")
    skopeo.copy(skopeo.ref(repo, "v1"), f"oci:{out.path}:v1", "--preserve-digests")
    assert out.descriptor("v1")["digest"] == pushed_digest
    manifest = json.loads(out.blob(pushed_digest))
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"]["digest"] == f"sha256:{image_id.removeprefix('sha256:')}"
    config = json.loads(out.blob(manifest["config"]["digest"]))
    layers = [out.blob(layer["digest"]) for layer in manifest["layers"]]
    assert config["rootfs"]["diff_ids"] == [sha256(gzip.decompress(layer)) for layer in layers]
    contents: dict[str, bytes] = {}
    for layer in layers:
        contents.update(read_layer(layer))
    assert contents == files
