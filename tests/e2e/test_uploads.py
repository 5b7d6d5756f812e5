"""end-4a/4b, end-5, end-6, end-11, end-13, end-14: upload sessions and mounts."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from .registry import RegistryClient, assert_error, digest_of, upload_end

DATA = os.urandom(3000)


def test_start_upload(client: RegistryClient, repo: str) -> None:
    response = client.start_upload(repo)
    assert response.headers["Range"] == "0-0"
    uuid = response.headers["Docker-Upload-UUID"]
    assert uuid
    location = client.resolve(response.headers["Location"])
    assert location.path.startswith(f"/v2/{repo}/blobs/uploads/")
    assert uuid in str(location)


def test_monolithic_single_post(client: RegistryClient, repo: str) -> None:
    digest = digest_of(DATA)
    response = client.request(
        "POST",
        f"/v2/{repo}/blobs/uploads/",
        params={"digest": digest},
        content=DATA,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text
    assert response.headers["Docker-Content-Digest"] == digest
    blob = client.request("GET", client.resolve(response.headers["Location"]))
    assert blob.status_code == 200
    assert blob.content == DATA


def test_monolithic_post_then_put(client: RegistryClient, repo: str) -> None:
    location = client.start_upload(repo).headers["Location"]
    digest = digest_of(DATA)
    response = client.request(
        "PUT",
        client.resolve(location, digest=digest),
        content=DATA,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201
    assert response.headers["Docker-Content-Digest"] == digest
    blob_url = client.resolve(response.headers["Location"])
    assert blob_url.path == f"/v2/{repo}/blobs/{digest}"
    assert client.request("GET", blob_url).content == DATA


@pytest.mark.parametrize("last_in_put", [False, True])
def test_chunked_upload(client: RegistryClient, repo: str, last_in_put: bool) -> None:
    digest = client.push_blob_chunked(repo, DATA, 1000, last_in_put=last_in_put)
    assert client.get_blob(repo, digest).content == DATA


def test_chunk_headers_and_status(client: RegistryClient, repo: str) -> None:
    start = client.start_upload(repo)
    uuid = start.headers["Docker-Upload-UUID"]
    response = client.patch_chunk(start.headers["Location"], DATA[:1000], 0)
    assert response.status_code == 202
    assert response.headers["Range"] == "0-999"
    assert response.headers["Docker-Upload-UUID"] == uuid
    location = response.headers["Location"]

    status = client.request("GET", client.resolve(location))
    assert status.status_code == 204
    assert status.headers["Range"] == "0-999"
    assert status.headers["Docker-Upload-UUID"] == uuid
    location = status.headers["Location"]

    response = client.patch_chunk(location, DATA[1000:], 1000)
    assert response.status_code == 202
    assert response.headers["Range"] == f"0-{len(DATA) - 1}"
    digest = digest_of(DATA)
    done = client.request("PUT", client.resolve(response.headers["Location"], digest=digest))
    assert done.status_code == 201
    assert done.headers["Docker-Content-Digest"] == digest


@pytest.mark.parametrize(
    "content_range",
    [
        "1500-1999",  # a gap after the current end
        "500-999",  # overlaps bytes already received
        "0-499",  # starts over
    ],
)
def test_out_of_order_chunk_is_416_with_current_range(
    client: RegistryClient, repo: str, content_range: str
) -> None:
    first = client.patch_chunk(client.start_upload(repo).headers["Location"], DATA[:1000], 0)
    assert first.status_code == 202
    location = first.headers["Location"]
    start, end = (int(x) for x in content_range.split("-"))
    response = client.request(
        "PATCH",
        client.resolve(location),
        content=DATA[start : end + 1],
        headers={"Content-Type": "application/octet-stream", "Content-Range": content_range},
    )
    assert_error(response, 416)
    assert response.headers["Range"] == "0-999"
    # The session is unharmed: the right chunk still completes it.
    status = client.request("GET", client.resolve(location))
    assert status.status_code == 204
    assert status.headers["Range"] == "0-999"
    follow = client.patch_chunk(status.headers["Location"], DATA[1000:], 1000)
    assert follow.status_code == 202
    digest = digest_of(DATA)
    done = client.request("PUT", client.resolve(follow.headers["Location"], digest=digest))
    assert done.status_code == 201


def test_streamed_patch_without_content_range(client: RegistryClient, repo: str) -> None:
    location = client.start_upload(repo).headers["Location"]

    def body() -> Iterator[bytes]:
        for i in range(0, len(DATA), 256):
            yield DATA[i : i + 256]

    # A generator body goes out with chunked transfer encoding and no Content-Length.
    response = client.request(
        "PATCH",
        client.resolve(location),
        content=body(),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 202
    assert response.headers["Range"] == f"0-{len(DATA) - 1}"
    digest = digest_of(DATA)
    done = client.request("PUT", client.resolve(response.headers["Location"], digest=digest))
    assert done.status_code == 201
    assert client.get_blob(repo, digest).content == DATA


def test_cancel_upload(client: RegistryClient, repo: str) -> None:
    response = client.patch_chunk(client.start_upload(repo).headers["Location"], DATA, 0)
    location = response.headers["Location"]
    cancelled = client.request("DELETE", client.resolve(location))
    assert cancelled.status_code == 204
    assert_error(client.request("GET", client.resolve(location)), 404, "BLOB_UPLOAD_UNKNOWN")
    put = client.request("PUT", client.resolve(location, digest=digest_of(DATA)), content=b"")
    assert_error(put, 404, "BLOB_UPLOAD_UNKNOWN")
    assert not client.blob_exists(repo, digest_of(DATA))


def test_upload_is_gone_after_completion(client: RegistryClient, repo: str) -> None:
    location = client.start_upload(repo).headers["Location"]
    digest = digest_of(DATA)
    assert (
        client.request("PUT", client.resolve(location, digest=digest), content=DATA).status_code
        == 201
    )
    assert_error(client.request("GET", client.resolve(location)), 404, "BLOB_UPLOAD_UNKNOWN")


def test_unknown_upload_id_is_404(client: RegistryClient, repo: str) -> None:
    client.push_blob(repo, b"repository exists")
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        response = client.request(
            method,
            f"/v2/{repo}/blobs/uploads/00000000-0000-4000-8000-000000000000",
            params={"digest": digest_of(b"x")} if method == "PUT" else None,
            content=b"x" if method in ("PATCH", "PUT") else None,
        )
        assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")


def test_upload_id_of_another_repository_is_404(client: RegistryClient, repo: str) -> None:
    start = client.start_upload(repo)
    uuid = start.headers["Docker-Upload-UUID"]
    other = f"{repo}-other"
    client.push_blob(other, b"repository exists")
    base = f"/v2/{other}/blobs/uploads/{uuid}"
    assert_error(client.request("GET", base), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(
        client.request("PATCH", base, content=DATA, headers={"Content-Range": "0-2999"}),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    )
    assert_error(
        client.request("PUT", base, params={"digest": digest_of(DATA)}, content=DATA),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    )
    assert not client.blob_exists(other, digest_of(DATA))
    # The session itself is untouched in its own repository.
    assert client.request("GET", client.resolve(start.headers["Location"])).status_code == 204


def test_wrong_digest_at_put_stores_nothing(client: RegistryClient, repo: str) -> None:
    location = client.start_upload(repo).headers["Location"]
    claimed = digest_of(b"not the data")
    response = client.request("PUT", client.resolve(location, digest=claimed), content=DATA)
    assert_error(response, 400, "DIGEST_INVALID")
    assert not client.blob_exists(repo, claimed)
    assert not client.blob_exists(repo, digest_of(DATA))


def test_wrong_digest_at_single_post_stores_nothing(client: RegistryClient, repo: str) -> None:
    claimed = digest_of(b"not the data")
    response = client.request(
        "POST", f"/v2/{repo}/blobs/uploads/", params={"digest": claimed}, content=DATA
    )
    assert_error(response, 400, "DIGEST_INVALID")
    assert not client.blob_exists(repo, claimed)
    assert not client.blob_exists(repo, digest_of(DATA))


def test_put_without_digest_is_rejected(client: RegistryClient, repo: str) -> None:
    location = client.start_upload(repo).headers["Location"]
    response = client.request("PUT", client.resolve(location), content=DATA)
    assert_error(response, 400, "DIGEST_INVALID")


def test_sha512_monolithic(client: RegistryClient, repo: str) -> None:
    digest = client.push_blob(repo, DATA, algorithm="sha512")
    assert digest.startswith("sha512:")
    response = client.get_blob(repo, digest)
    assert response.status_code == 200
    assert response.content == DATA
    # The header may name the canonical digest in another algorithm, but must match the bytes.
    header = response.headers["Docker-Content-Digest"]
    assert digest_of(DATA, header.partition(":")[0]) == header


def test_sha512_chunked(client: RegistryClient, repo: str) -> None:
    digest = client.push_blob_chunked(repo, DATA, 700, algorithm="sha512")
    response = client.get_blob(repo, digest)
    assert response.content == DATA
    header = response.headers["Docker-Content-Digest"]
    assert digest_of(DATA, header.partition(":")[0]) == header


def test_mount_from_repository_that_has_the_blob(client: RegistryClient, repo: str) -> None:
    digest = client.push_blob(repo, DATA)
    target = f"{repo}-target"
    response = client.request(
        "POST", f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": repo}
    )
    assert response.status_code == 201
    assert response.headers["Docker-Content-Digest"] == digest
    blob_url = client.resolve(response.headers["Location"])
    assert blob_url.path == f"/v2/{target}/blobs/{digest}"
    assert client.request("GET", blob_url).content == DATA


@pytest.mark.parametrize("source", ["lacks", "missing", "absent-from"])
def test_mount_that_cannot_happen_opens_a_session(
    client: RegistryClient, repo: str, source: str
) -> None:
    digest = client.push_blob(repo, DATA)
    target = f"{repo}-target"
    params = {"mount": digest}
    if source == "lacks":
        lacking = f"{repo}-lacking"
        client.push_blob(lacking, b"something else")
        params["from"] = lacking
    elif source == "missing":
        params["from"] = f"{repo}-never-created"
    response = client.request("POST", f"/v2/{target}/blobs/uploads/", params=params)
    assert response.status_code == 202
    assert response.headers["Range"] == "0-0"
    location = response.headers["Location"]
    assert not client.blob_exists(target, digest)
    # The session is a normal one.
    done = client.request("PUT", client.resolve(location, digest=digest), content=DATA)
    assert done.status_code == 201
    assert client.get_blob(target, digest).content == DATA


def test_location_headers_are_usable_as_given(client: RegistryClient, repo: str) -> None:
    """Each Location resolves against the registry URL, whether absolute or relative."""
    start = client.start_upload(repo).headers["Location"]
    url = client.resolve(start)
    assert (url.scheme, url.host, url.port) == (
        httpx.URL(client.url).scheme,
        httpx.URL(client.url).host,
        httpx.URL(client.url).port,
    )
    patched = client.patch_chunk(start, DATA, 0).headers["Location"]
    done = client.request("PUT", client.resolve(patched, digest=digest_of(DATA)))
    assert done.status_code == 201
    assert client.request("GET", client.resolve(done.headers["Location"])).content == DATA


def test_concurrent_sessions_are_independent(client: RegistryClient, repo: str) -> None:
    first = client.start_upload(repo).headers["Location"]
    second = client.start_upload(repo).headers["Location"]
    assert client.resolve(first) != client.resolve(second)
    a, b = os.urandom(100), os.urandom(200)
    first = client.patch_chunk(first, a, 0).headers["Location"]
    second = client.patch_chunk(second, b, 0).headers["Location"]
    assert client.request("PUT", client.resolve(second, digest=digest_of(b))).status_code == 201
    assert client.request("PUT", client.resolve(first, digest=digest_of(a))).status_code == 201
    assert client.get_blob(repo, digest_of(a)).content == a
    assert client.get_blob(repo, digest_of(b)).content == b


def test_status_range_after_each_chunk(client: RegistryClient, repo: str) -> None:
    location = client.start_upload(repo).headers["Location"]
    offset = 0
    for size in (1, 10, 100, 1000):
        chunk = DATA[offset : offset + size]
        response = client.patch_chunk(location, chunk, offset)
        offset += size
        location = response.headers["Location"]
        status = client.request("GET", client.resolve(location))
        assert upload_end(status.headers["Range"]) == offset - 1
        location = status.headers["Location"]
