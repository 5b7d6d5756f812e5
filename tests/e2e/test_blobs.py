"""end-2 and end-10: fetching, range requests and deleting blobs."""

from __future__ import annotations

import email.parser
import email.policy
import os

import pytest

from .registry import RegistryClient, assert_error, digest_of

DATA = bytes(range(256)) * 4 + b"tail-of-the-blob"


@pytest.fixture
def blob(client: RegistryClient, repo: str) -> str:
    return client.push_blob(repo, DATA)


def test_get_blob_returns_bytes_and_headers(client: RegistryClient, repo: str, blob: str) -> None:
    response = client.get_blob(repo, blob)
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["Docker-Content-Digest"] == blob
    assert int(response.headers["Content-Length"]) == len(DATA)
    assert response.headers["Accept-Ranges"] == "bytes"


def test_head_blob_has_length_and_digest_without_body(
    client: RegistryClient, repo: str, blob: str
) -> None:
    response = client.request("HEAD", f"/v2/{repo}/blobs/{blob}")
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["Content-Length"]) == len(DATA)
    assert response.headers["Docker-Content-Digest"] == blob
    assert response.headers["Accept-Ranges"] == "bytes"


def test_unknown_blob_is_404_blob_unknown(client: RegistryClient, repo: str) -> None:
    client.push_blob(repo, b"something else, so that the repository exists")
    missing = digest_of(os.urandom(16))
    assert_error(client.get_blob(repo, missing), 404, "BLOB_UNKNOWN")
    assert client.request("HEAD", f"/v2/{repo}/blobs/{missing}").status_code == 404


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=10-", 10, len(DATA) - 1),
        ("bytes=-5", len(DATA) - 5, len(DATA) - 1),
        ("bytes=100-199", 100, 199),
        # An end past the blob is clamped to its last byte.
        ("bytes=1000-999999", 1000, len(DATA) - 1),
    ],
)
def test_single_range(
    client: RegistryClient, repo: str, blob: str, header: str, start: int, end: int
) -> None:
    response = client.get_blob(repo, blob, Range=header)
    assert response.status_code == 206
    assert response.content == DATA[start : end + 1]
    assert response.headers["Content-Range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert int(response.headers["Content-Length"]) == end - start + 1


def test_multiple_ranges_are_multipart_byteranges(
    client: RegistryClient, repo: str, blob: str
) -> None:
    response = client.get_blob(repo, blob, Range="bytes=0-1,4-5")
    assert response.status_code == 206
    content_type = response.headers["Content-Type"]
    assert content_type.startswith("multipart/byteranges")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + response.content
    )
    parts = [
        (part["Content-Range"], part.get_payload(decode=True)) for part in message.iter_parts()
    ]
    assert parts == [
        (f"bytes 0-1/{len(DATA)}", DATA[0:2]),
        (f"bytes 4-5/{len(DATA)}", DATA[4:6]),
    ]


@pytest.mark.parametrize("header", ["bytes=5000-6000", f"bytes={len(DATA)}-"])
def test_unsatisfiable_range_is_416(
    client: RegistryClient, repo: str, blob: str, header: str
) -> None:
    response = client.get_blob(repo, blob, Range=header)
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{len(DATA)}"


def test_blob_is_scoped_to_its_repository(client: RegistryClient, repo: str, blob: str) -> None:
    other = f"{repo}-other"
    client.push_blob(other, b"makes the other repository exist")
    assert_error(client.get_blob(other, blob), 404, "BLOB_UNKNOWN")
    assert client.request("HEAD", f"/v2/{other}/blobs/{blob}").status_code == 404
    # Pushing the same bytes there makes them readable there.
    assert client.push_blob(other, DATA) == blob
    assert client.get_blob(other, blob).content == DATA


def test_delete_blob(client: RegistryClient, repo: str, blob: str) -> None:
    response = client.request("DELETE", f"/v2/{repo}/blobs/{blob}")
    assert response.status_code == 202
    assert_error(client.get_blob(repo, blob), 404, "BLOB_UNKNOWN")
    assert client.request("HEAD", f"/v2/{repo}/blobs/{blob}").status_code == 404
    assert_error(client.request("DELETE", f"/v2/{repo}/blobs/{blob}"), 404, "BLOB_UNKNOWN")


def test_delete_blob_in_one_repository_leaves_it_in_another(
    client: RegistryClient, repo: str, blob: str
) -> None:
    other = f"{repo}-mounted"
    mounted = client.request(
        "POST", f"/v2/{other}/blobs/uploads/", params={"mount": blob, "from": repo}
    )
    assert mounted.status_code == 201
    assert client.request("DELETE", f"/v2/{repo}/blobs/{blob}").status_code == 202
    assert client.get_blob(other, blob).content == DATA
    assert client.get_blob(repo, blob).status_code == 404


def test_empty_blob(client: RegistryClient, repo: str) -> None:
    digest = client.push_blob(repo, b"")
    assert digest == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    response = client.get_blob(repo, digest)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["Content-Length"] == "0"


def test_large_blob_round_trip(client: RegistryClient, repo: str) -> None:
    data = os.urandom(5 * 1024 * 1024 + 17)
    digest = client.push_blob(repo, data)
    response = client.get_blob(repo, digest)
    assert response.status_code == 200
    assert digest_of(response.content) == digest
    ranged = client.get_blob(repo, digest, Range="bytes=4194300-4194400")
    assert ranged.status_code == 206
    assert ranged.content == data[4194300:4194401]
