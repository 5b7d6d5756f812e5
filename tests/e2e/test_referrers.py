"""end-12a/12b: the referrers API of distribution-spec v1.1."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from .registry import (
    EMPTY_CONFIG,
    EMPTY_DIGEST,
    EMPTY_MEDIA_TYPE,
    OCI_INDEX,
    OCI_MANIFEST,
    Image,
    RegistryClient,
    assert_error,
    descriptor,
    digest_of,
    image_manifest,
    index_manifest,
)

SBOM = "application/vnd.example.sbom.v1"
SIGNATURE = "application/vnd.example.signature.v1"
CONFIG_TYPED = "application/vnd.example.config-as-type.v1+json"
EMPTY = {"mediaType": EMPTY_MEDIA_TYPE, "digest": EMPTY_DIGEST, "size": 2}


def _subject_of(image: Image) -> dict[str, Any]:
    return {"mediaType": image.media_type, "digest": image.digest, "size": len(image.body)}


def _referrers(client: RegistryClient, repo: str, digest: str, **params: str) -> Any:
    response = client.request("GET", f"/v2/{repo}/referrers/{digest}", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].split(";")[0] == OCI_INDEX
    index = response.json()
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == OCI_INDEX
    return response, index


@pytest.fixture
def graph(client: RegistryClient, repo: str) -> dict[str, Any]:
    """A subject with an SBOM, a signature, an untyped-config referrer and an index referrer."""
    subject = client.push_image(repo, "app")
    assert client.push_blob(repo, EMPTY_CONFIG) == EMPTY_DIGEST
    subject_desc = _subject_of(subject)
    sbom = image_manifest(
        EMPTY,
        [EMPTY],
        artifact_type=SBOM,
        subject=subject_desc,
        annotations={"org.example.format": "spdx", "org.opencontainers.image.created": "2024"},
    )
    signature = image_manifest(
        EMPTY, [EMPTY], artifact_type=SIGNATURE, subject=subject_desc, annotations={"k": "v"}
    )
    config = json.dumps({"kind": "config-as-type", "n": os.urandom(4).hex()}).encode()
    client.push_blob(repo, config)
    untyped = image_manifest(descriptor(CONFIG_TYPED, config), [EMPTY], subject=subject_desc)
    child = client.push_image(repo)
    index = index_manifest(
        [{"mediaType": OCI_MANIFEST, "digest": child.digest, "size": len(child.body)}],
        subject=subject_desc,
        annotations={"org.example.index": "yes"},
    )
    for body, media_type in (
        (sbom, OCI_MANIFEST),
        (signature, OCI_MANIFEST),
        (untyped, OCI_MANIFEST),
        (index, OCI_INDEX),
    ):
        response = client.put_manifest(repo, digest_of(body), body, media_type)
        assert response.status_code == 201, response.text
        assert response.headers["OCI-Subject"] == subject.digest
    return {
        "subject": subject,
        "sbom": sbom,
        "signature": signature,
        "untyped": untyped,
        "index": index,
    }


def test_lists_every_referrer_with_type_and_annotations(
    client: RegistryClient, repo: str, graph: dict[str, Any]
) -> None:
    _, index = _referrers(client, repo, graph["subject"].digest)
    by_digest = {d["digest"]: d for d in index["manifests"]}
    assert set(by_digest) == {
        digest_of(graph[k]) for k in ("sbom", "signature", "untyped", "index")
    }
    sbom = by_digest[digest_of(graph["sbom"])]
    assert sbom == {
        "mediaType": OCI_MANIFEST,
        "digest": digest_of(graph["sbom"]),
        "size": len(graph["sbom"]),
        "artifactType": SBOM,
        "annotations": {"org.example.format": "spdx", "org.opencontainers.image.created": "2024"},
    }
    assert by_digest[digest_of(graph["signature"])]["annotations"] == {"k": "v"}
    # Without an artifactType, a manifest's config media type stands in.
    assert by_digest[digest_of(graph["untyped"])]["artifactType"] == CONFIG_TYPED
    # An index without artifactType has none.
    index_desc = by_digest[digest_of(graph["index"])]
    assert index_desc["mediaType"] == OCI_INDEX
    assert "artifactType" not in index_desc
    assert index_desc["annotations"] == {"org.example.index": "yes"}


def test_filter_by_artifact_type(client: RegistryClient, repo: str, graph: dict[str, Any]) -> None:
    response, index = _referrers(client, repo, graph["subject"].digest, artifactType=SBOM)
    assert response.headers["OCI-Filters-Applied"] == "artifactType"
    assert [d["digest"] for d in index["manifests"]] == [digest_of(graph["sbom"])]

    response, index = _referrers(client, repo, graph["subject"].digest, artifactType="nope/none")
    assert response.headers["OCI-Filters-Applied"] == "artifactType"
    assert index["manifests"] == []


def test_unfiltered_response_has_no_filters_header(
    client: RegistryClient, repo: str, graph: dict[str, Any]
) -> None:
    response, _ = _referrers(client, repo, graph["subject"].digest)
    assert "OCI-Filters-Applied" not in response.headers


def test_unknown_subject_is_an_empty_index(client: RegistryClient, repo: str) -> None:
    client.push_image(repo, "something")
    _, index = _referrers(client, repo, digest_of(b"no such manifest"))
    assert index["manifests"] == []


def test_unknown_repository_is_an_empty_index_or_404(client: RegistryClient, repo: str) -> None:
    response = client.request("GET", f"/v2/{repo}/referrers/{digest_of(b'x')}")
    if response.status_code == 404:
        assert_error(response, 404, "NAME_UNKNOWN")
    else:
        assert response.status_code == 200
        assert response.json()["manifests"] == []


@pytest.mark.parametrize(
    "bad", ["sha256:abc", "sha256:" + "G" * 64, "latest", "sha256:" + "A" * 64]
)
def test_bad_digest_is_400(client: RegistryClient, repo: str, bad: str) -> None:
    client.push_image(repo, "something")
    assert_error(client.request("GET", f"/v2/{repo}/referrers/{bad}"), 400, "DIGEST_INVALID")


def test_referrer_pushed_before_its_subject(client: RegistryClient, repo: str) -> None:
    client.push_blob(repo, EMPTY_CONFIG)
    future = image_manifest(EMPTY, annotations={"future": "subject"})
    subject = {"mediaType": OCI_MANIFEST, "digest": digest_of(future), "size": len(future)}
    referrer = image_manifest(EMPTY, [EMPTY], artifact_type=SIGNATURE, subject=subject)
    client.push_manifest(repo, digest_of(referrer), referrer)
    client.push_manifest(repo, "subject", future)
    _, index = _referrers(client, repo, digest_of(future))
    assert [d["digest"] for d in index["manifests"]] == [digest_of(referrer)]


def test_deleted_referrer_disappears(
    client: RegistryClient, repo: str, graph: dict[str, Any]
) -> None:
    sbom = digest_of(graph["sbom"])
    assert client.request("DELETE", f"/v2/{repo}/manifests/{sbom}").status_code == 202
    _, index = _referrers(client, repo, graph["subject"].digest)
    assert sbom not in {d["digest"] for d in index["manifests"]}
    assert len(index["manifests"]) == 3


def test_referrers_are_scoped_to_the_repository(
    client: RegistryClient, repo: str, graph: dict[str, Any]
) -> None:
    other = f"{repo}-other"
    client.push_image(other, "unrelated")
    _, index = _referrers(client, other, graph["subject"].digest)
    assert index["manifests"] == []


def test_tagged_referrer_is_listed_once(
    client: RegistryClient, repo: str, graph: dict[str, Any]
) -> None:
    client.push_manifest(repo, "sig-tag", graph["signature"])
    _, index = _referrers(client, repo, graph["subject"].digest)
    digests = [d["digest"] for d in index["manifests"]]
    assert digests.count(digest_of(graph["signature"])) == 1
