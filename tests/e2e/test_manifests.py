"""end-3, end-7, end-9: pushing, pulling and deleting manifests of every supported type."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from .registry import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    EMPTY_CONFIG,
    EMPTY_DIGEST,
    EMPTY_MEDIA_TYPE,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    RegistryClient,
    assert_error,
    descriptor,
    digest_of,
    image_manifest,
    index_manifest,
)

MIB = 1024 * 1024


@dataclass(frozen=True)
class Doc:
    body: bytes
    media_type: str


def _oci_image(client: RegistryClient, repo: str) -> Doc:
    image = client.push_image(repo)
    # Odd whitespace and key order: the registry must keep the bytes exactly.
    doc = json.loads(image.body)
    body = (
        '{\n\t"layers" :  '
        + json.dumps(doc["layers"], indent=7)
        + ',\r\n "config":'
        + json.dumps(doc["config"], separators=(",", ":"))
        + ', "mediaType": "'
        + OCI_MANIFEST
        + '",   "schemaVersion":2 }\n\n'
    ).encode()
    return Doc(body, OCI_MANIFEST)


def _docker_image(client: RegistryClient, repo: str) -> Doc:
    image = client.push_image(repo, media_type=DOCKER_MANIFEST)
    return Doc(json.dumps(json.loads(image.body), indent=3).encode(), DOCKER_MANIFEST)


def _oci_index(client: RegistryClient, repo: str) -> Doc:
    children = [client.push_image(repo) for _ in range(2)]
    body = index_manifest(
        [
            {
                "mediaType": OCI_MANIFEST,
                "digest": child.digest,
                "size": len(child.body),
                "platform": {"architecture": arch, "os": "linux"},
            }
            for child, arch in zip(children, ("amd64", "arm64"), strict=True)
        ],
        annotations={"org.example.z": "last", "org.example.a": "first"},
    )
    return Doc(b"  " + body + b"  ", OCI_INDEX)


def _docker_list(client: RegistryClient, repo: str) -> Doc:
    child = client.push_image(repo, media_type=DOCKER_MANIFEST)
    body = index_manifest(
        [
            {
                "mediaType": DOCKER_MANIFEST,
                "digest": child.digest,
                "size": len(child.body),
                "platform": {"architecture": "amd64", "os": "linux"},
            }
        ],
        media_type=DOCKER_MANIFEST_LIST,
    )
    return Doc(body, DOCKER_MANIFEST_LIST)


def _artifact(client: RegistryClient, repo: str) -> Doc:
    assert client.push_blob(repo, EMPTY_CONFIG) == EMPTY_DIGEST
    payload = os.urandom(64)
    client.push_blob(repo, payload)
    body = image_manifest(
        {"mediaType": EMPTY_MEDIA_TYPE, "digest": EMPTY_DIGEST, "size": 2},
        [descriptor("application/vnd.example.payload", payload)],
        artifact_type="application/vnd.example.thing.v1",
        annotations={"org.opencontainers.image.title": "thing"},
    )
    return Doc(body, OCI_MANIFEST)


BUILDERS: dict[str, Callable[[RegistryClient, str], Doc]] = {
    "oci-image": _oci_image,
    "oci-index": _oci_index,
    "docker-image": _docker_image,
    "docker-list": _docker_list,
    "oci-artifact": _artifact,
}


@pytest.mark.parametrize("kind", sorted(BUILDERS))
@pytest.mark.parametrize("by", ["tag", "digest"])
def test_push_pull_head_delete(client: RegistryClient, repo: str, kind: str, by: str) -> None:
    doc = BUILDERS[kind](client, repo)
    digest = digest_of(doc.body)
    reference = "v1.0" if by == "tag" else digest

    put = client.put_manifest(repo, reference, doc.body, doc.media_type)
    assert put.status_code == 201, put.text
    assert put.headers["Docker-Content-Digest"] == digest
    location = client.resolve(put.headers["Location"])
    assert location.path in (f"/v2/{repo}/manifests/{digest}", f"/v2/{repo}/manifests/{reference}")

    for ref in {reference, digest}:
        got = client.get_manifest(repo, ref)
        assert got.status_code == 200
        assert got.content == doc.body
        assert got.headers["Content-Type"] == doc.media_type
        assert got.headers["Docker-Content-Digest"] == digest
        head = client.request(
            "HEAD", f"/v2/{repo}/manifests/{ref}", headers={"Accept": doc.media_type}
        )
        assert head.status_code == 200
        assert head.content == b""
        assert int(head.headers["Content-Length"]) == len(doc.body)
        assert head.headers["Docker-Content-Digest"] == digest
        assert head.headers["Content-Type"] == doc.media_type
    assert client.request("GET", location, headers={"Accept": doc.media_type}).content == doc.body

    deleted = client.request("DELETE", f"/v2/{repo}/manifests/{digest}")
    assert deleted.status_code == 202
    for ref in {reference, digest}:
        assert_error(client.get_manifest(repo, ref), 404, "MANIFEST_UNKNOWN")
        assert client.request("HEAD", f"/v2/{repo}/manifests/{ref}").status_code == 404


def test_unknown_manifest_is_404(client: RegistryClient, repo: str) -> None:
    client.push_image(repo, "exists")
    assert_error(client.get_manifest(repo, "nope"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.get_manifest(repo, digest_of(b"nope")), 404, "MANIFEST_UNKNOWN")
    assert client.request("HEAD", f"/v2/{repo}/manifests/nope").status_code == 404


def test_manifest_of_unknown_repository_is_404(client: RegistryClient, repo: str) -> None:
    assert_error(client.get_manifest(repo, "latest"), 404, "NAME_UNKNOWN", "MANIFEST_UNKNOWN")


class TestAcceptNegotiation:
    """A manifest has one representation: it is served as stored, whatever the Accept."""

    @pytest.mark.parametrize(
        "accept",
        [
            OCI_MANIFEST,
            f"{DOCKER_MANIFEST}, {OCI_MANIFEST}",
            f"{DOCKER_MANIFEST};q=0.9, {OCI_MANIFEST};q=0.5",
            "*/*",
            None,
        ],
    )
    def test_oci_manifest(self, client: RegistryClient, repo: str, accept: str | None) -> None:
        image = client.push_image(repo, "t")
        for ref in ("t", image.digest):
            got = client.get_manifest(repo, ref, accept=accept)
            assert got.status_code == 200
            assert got.content == image.body
            assert got.headers["Content-Type"] == OCI_MANIFEST

    @pytest.mark.parametrize("accept", [DOCKER_MANIFEST, f"{OCI_INDEX}, {DOCKER_MANIFEST}", None])
    def test_docker_manifest(self, client: RegistryClient, repo: str, accept: str | None) -> None:
        image = client.push_image(repo, "t", media_type=DOCKER_MANIFEST)
        got = client.get_manifest(repo, "t", accept=accept)
        assert got.status_code == 200
        assert got.content == image.body
        assert got.headers["Content-Type"] == DOCKER_MANIFEST


def test_put_by_digest_with_other_body_is_digest_invalid(client: RegistryClient, repo: str) -> None:
    image = client.push_image(repo)
    other = image.body + b" "
    response = client.put_manifest(repo, image.digest, other)
    assert_error(response, 400, "DIGEST_INVALID")
    assert_error(client.get_manifest(repo, digest_of(other)), 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize("missing", ["config", "layer"])
def test_missing_blob_is_manifest_blob_unknown(
    client: RegistryClient, repo: str, missing: str
) -> None:
    config, layer = b'{"os":"linux"}', os.urandom(32)
    if missing != "config":
        client.push_blob(repo, config)
    if missing != "layer":
        client.push_blob(repo, layer)
    body = image_manifest(descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, layer)])
    assert_error(client.put_manifest(repo, "t", body), 400, "MANIFEST_BLOB_UNKNOWN")
    assert_error(client.get_manifest(repo, "t"), 404, "MANIFEST_UNKNOWN", "NAME_UNKNOWN")


def test_blob_of_another_repository_is_manifest_blob_unknown(
    client: RegistryClient, repo: str
) -> None:
    config = b'{"os":"plan9"}'
    client.push_blob(f"{repo}-elsewhere", config)
    body = image_manifest(descriptor(OCI_CONFIG, config))
    assert_error(client.put_manifest(repo, "t", body), 400, "MANIFEST_BLOB_UNKNOWN")


def test_index_with_missing_child_is_manifest_blob_unknown(
    client: RegistryClient, repo: str
) -> None:
    present = client.push_image(repo)
    absent = image_manifest(descriptor(OCI_CONFIG, b"{}"))
    body = index_manifest(
        [
            {"mediaType": OCI_MANIFEST, "digest": present.digest, "size": len(present.body)},
            {"mediaType": OCI_MANIFEST, "digest": digest_of(absent), "size": len(absent)},
        ]
    )
    assert_error(client.put_manifest(repo, "t", body, OCI_INDEX), 400, "MANIFEST_BLOB_UNKNOWN")


def test_subject_that_does_not_exist_yet_is_accepted(client: RegistryClient, repo: str) -> None:
    client.push_blob(repo, EMPTY_CONFIG)
    subject_body = image_manifest(descriptor(OCI_CONFIG, b'{"later":true}'))
    subject = {"mediaType": OCI_MANIFEST, "digest": digest_of(subject_body), "size": 99}
    body = image_manifest(
        {"mediaType": EMPTY_MEDIA_TYPE, "digest": EMPTY_DIGEST, "size": 2},
        [{"mediaType": EMPTY_MEDIA_TYPE, "digest": EMPTY_DIGEST, "size": 2}],
        artifact_type="application/vnd.example.signature",
        subject=subject,
    )
    response = client.put_manifest(repo, digest_of(body), body)
    assert response.status_code == 201, response.text
    assert response.headers["OCI-Subject"] == subject["digest"]
    assert client.get_manifest(repo, digest_of(body)).content == body


def test_manifest_of_4_mib_is_accepted(client: RegistryClient, repo: str) -> None:
    image = client.push_image(repo)
    body = _padded(image.body, 4 * MIB)
    assert len(body) == 4 * MIB
    assert client.put_manifest(repo, "big", body).status_code == 201
    assert client.get_manifest(repo, "big").content == body


def test_manifest_over_4_mib_is_413(client: RegistryClient, repo: str) -> None:
    image = client.push_image(repo)
    body = _padded(image.body, 4 * MIB + 1)
    assert_error(client.put_manifest(repo, "huge", body), 413)
    assert client.get_manifest(repo, "huge").status_code == 404


def _padded(body: bytes, size: int) -> bytes:
    doc = json.loads(body)
    doc["annotations"] = {"pad": ""}
    base = len(json.dumps(doc).encode())
    doc["annotations"]["pad"] = "x" * (size - base)
    return json.dumps(doc).encode()


def test_retag_moves_tag_and_keeps_old_manifest(client: RegistryClient, repo: str) -> None:
    first = client.push_image(repo, "moving")
    second = client.push_image(repo, "moving")
    assert client.get_manifest(repo, "moving").content == second.body
    assert client.get_manifest(repo, first.digest).content == first.body


def test_delete_tag_removes_only_the_tag(client: RegistryClient, repo: str) -> None:
    image = client.push_image(repo, "one")
    client.push_manifest(repo, "two", image.body)
    response = client.request("DELETE", f"/v2/{repo}/manifests/one")
    assert response.status_code == 202
    assert_error(client.get_manifest(repo, "one"), 404, "MANIFEST_UNKNOWN")
    assert client.get_manifest(repo, "two").content == image.body
    assert client.get_manifest(repo, image.digest).content == image.body
    tags = client.request("GET", f"/v2/{repo}/tags/list").json()["tags"]
    assert tags == ["two"]


def test_delete_by_digest_removes_its_tags(client: RegistryClient, repo: str) -> None:
    image = client.push_image(repo, "one")
    client.push_manifest(repo, "two", image.body)
    keep = client.push_image(repo, "three")
    assert client.request("DELETE", f"/v2/{repo}/manifests/{image.digest}").status_code == 202
    for ref in ("one", "two", image.digest):
        assert_error(client.get_manifest(repo, ref), 404, "MANIFEST_UNKNOWN")
    assert client.request("GET", f"/v2/{repo}/tags/list").json()["tags"] == ["three"]
    assert client.get_manifest(repo, "three").content == keep.body
    # Blobs are not deleted with a manifest.
    for digest, data in image.blobs.items():
        assert client.get_blob(repo, digest).content == data


def test_delete_unknown_manifest_is_404(client: RegistryClient, repo: str) -> None:
    client.push_image(repo, "exists")
    response = client.request("DELETE", f"/v2/{repo}/manifests/{digest_of(b'nothing')}")
    assert_error(response, 404, "MANIFEST_UNKNOWN")
    assert_error(
        client.request("DELETE", f"/v2/{repo}/manifests/nosuchtag"), 404, "MANIFEST_UNKNOWN"
    )


def test_same_manifest_in_two_repositories(client: RegistryClient, repo: str) -> None:
    image = client.push_image(repo, "a")
    other = f"{repo}-copy"
    for digest in image.blobs:
        mounted = client.request(
            "POST", f"/v2/{other}/blobs/uploads/", params={"mount": digest, "from": repo}
        )
        assert mounted.status_code == 201
    client.push_manifest(other, "b", image.body)
    assert client.request("DELETE", f"/v2/{repo}/manifests/{image.digest}").status_code == 202
    assert client.get_manifest(other, "b").content == image.body
