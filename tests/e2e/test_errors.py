"""Bad input: every refusal is a spec error envelope with the right code, and nothing is a 500."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest

from .conftest import RegistryServer
from .registry import (
    OCI_MANIFEST,
    RegistryClient,
    assert_error,
    digest_of,
    image_manifest,
    raw_request,
)

ZERO = digest_of(b"")

BAD_NAMES = [
    "UPPER",
    "Upper/case",
    "a..b",
    "-a",
    "a-",
    "a_",
    ".a",
    "a___b",
    "a/-b",
    "a/b/",
    "a" * 256,
    "a/" + "b" * 254,  # 256 with the slash
    "a/" * 100 + "b" * 56,  # 256 in many components
]


def _name_endpoints(name: str) -> list[tuple[str, str]]:
    return [
        ("GET", f"/v2/{name}/tags/list"),
        ("GET", f"/v2/{name}/manifests/latest"),
        ("HEAD", f"/v2/{name}/manifests/latest"),
        ("PUT", f"/v2/{name}/manifests/latest"),
        ("DELETE", f"/v2/{name}/manifests/{ZERO}"),
        ("GET", f"/v2/{name}/blobs/{ZERO}"),
        ("DELETE", f"/v2/{name}/blobs/{ZERO}"),
        ("POST", f"/v2/{name}/blobs/uploads/"),
        ("GET", f"/v2/{name}/referrers/{ZERO}"),
    ]


@pytest.mark.parametrize("name", BAD_NAMES, ids=lambda n: n if len(n) < 20 else f"len{len(n)}")
def test_invalid_name_is_name_invalid(client: RegistryClient, name: str) -> None:
    for method, path in _name_endpoints(name):
        response = client.request(method, path, content=b"{}" if method == "PUT" else None)
        assert_error(response, 400, "NAME_INVALID")


@pytest.mark.parametrize(
    "name", ["a__b", "a-----b", "a.b_c-d", "0/1/2/3", "a" * 255, "a/" * 100 + "b" * 55]
)
def test_valid_unusual_names_are_accepted(client: RegistryClient, name: str) -> None:
    assert_error(client.request("GET", f"/v2/{name}/tags/list"), 404, "NAME_UNKNOWN")
    image = client.push_image(name, "t")
    tags = client.request("GET", f"/v2/{name}/tags/list")
    assert tags.json() == {"name": name, "tags": ["t"]}
    assert client.get_manifest(name, "t").content == image.body


def _raw_get(registry: RegistryServer, path: str) -> tuple[int, set[str]]:
    # Sent as raw bytes: a client library would resolve the dot segments itself.
    response = raw_request(
        registry.url,
        f"GET {path} HTTP/1.1\r\nHost: registry\r\nConnection: close\r\n\r\n".encode(),
    )
    return response.status, {e["code"] for e in response.errors()}


@pytest.mark.parametrize(
    "path",
    ["/v2/../x/tags/list", "/v2/a/../b/tags/list", "/v2/./a/tags/list", "/v2//tags/list"],
)
def test_dot_segments_and_empty_components_are_name_invalid(
    registry: RegistryServer, path: str
) -> None:
    """The route matches (``<name>`` spans slashes) and the name fails the grammar."""
    assert _raw_get(registry, path) == (400, {"NAME_INVALID"})


@pytest.mark.parametrize(
    "path", ["/v2/tags/list", "/v2/a/blobs/", "/v2/a/manifests/", "/v2/a/nothing/here"]
)
def test_paths_no_route_matches_are_404_with_an_envelope(
    registry: RegistryServer, path: str
) -> None:
    status, codes = _raw_get(registry, path)
    assert status == 404
    assert codes


BAD_TAGS = ["-bad", ".bad", "a" * 129, "bad!tag", "bad+tag", "bad~"]


@pytest.mark.parametrize("tag", BAD_TAGS, ids=lambda t: t if len(t) < 20 else f"len{len(t)}")
def test_invalid_tag_is_tag_invalid(client: RegistryClient, repo: str, tag: str) -> None:
    image = client.push_image(repo, "good")
    assert_error(client.put_manifest(repo, tag, image.body), 400, "TAG_INVALID")
    assert_error(client.get_manifest(repo, tag), 400, "TAG_INVALID")
    assert_error(client.request("DELETE", f"/v2/{repo}/manifests/{tag}"), 400, "TAG_INVALID")
    assert client.request("GET", f"/v2/{repo}/tags/list").json()["tags"] == ["good"]


def test_longest_tag_is_valid(client: RegistryClient, repo: str) -> None:
    tag = "_" + "a" * 127
    image = client.push_image(repo, tag)
    assert client.get_manifest(repo, tag).content == image.body


MALFORMED_DIGESTS = [
    "sha256:abc",
    "sha256:" + "g" * 64,
    "sha256:" + "A" * 64,
    "sha256:" + "0" * 65,
    "sha256:",
    "sha512:" + "0" * 64,
]


@pytest.mark.parametrize("digest", MALFORMED_DIGESTS, ids=lambda d: d[:14] + f"..{len(d)}")
def test_malformed_digest_is_digest_invalid(client: RegistryClient, repo: str, digest: str) -> None:
    client.push_blob(repo, b"repository exists")
    assert_error(client.get_blob(repo, digest), 400, "DIGEST_INVALID")
    assert client.request("HEAD", f"/v2/{repo}/blobs/{digest}").status_code == 400
    assert_error(client.request("DELETE", f"/v2/{repo}/blobs/{digest}"), 400, "DIGEST_INVALID")
    assert_error(client.get_manifest(repo, digest), 400, "DIGEST_INVALID")
    assert_error(client.request("DELETE", f"/v2/{repo}/manifests/{digest}"), 400, "DIGEST_INVALID")
    location = client.start_upload(repo).headers["Location"]
    put = client.request("PUT", client.resolve(location, digest=digest), content=b"data")
    assert_error(put, 400, "DIGEST_INVALID")
    post = client.request(
        "POST", f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=b"data"
    )
    assert_error(post, 400, "DIGEST_INVALID")


@pytest.mark.parametrize("digest", ["md5:" + "0" * 32, "foo:bar", "sha1:" + "0" * 40])
def test_unknown_algorithm_is_refused(client: RegistryClient, repo: str, digest: str) -> None:
    client.push_blob(repo, b"repository exists")
    response = client.get_blob(repo, digest)
    assert response.status_code in (400, 405), response.text
    assert_error(
        response,
        response.status_code,
        "DIGEST_INVALID" if response.status_code == 400 else "UNSUPPORTED",
    )


NOT_MANIFESTS: list[tuple[str, bytes]] = [
    ("text", b"not json at all"),
    ("empty", b""),
    ("null", b"null"),
    ("list", b"[]"),
    ("string", b'"manifest"'),
    ("truncated", b'{"schemaVersion": 2, "config": {'),
    ("bad-utf8", b'{"schemaVersion": 2, "x": "\xff\xfe"}'),
    ("schema1", b'{"schemaVersion": 1}'),
    (
        "no-config",
        json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode(),
    ),
    (
        "layers-not-list",
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "a/b", "digest": ZERO, "size": 0},
                "layers": "many",
            }
        ).encode(),
    ),
    (
        "size-not-int",
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "a/b", "digest": ZERO, "size": "0"},
                "layers": [],
            }
        ).encode(),
    ),
    (
        "media-type-mismatch",
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "config": {"mediaType": "a/b", "digest": ZERO, "size": 0},
                "layers": [],
            }
        ).encode(),
    ),
    ("deep", b"[" * 100_000 + b"]" * 100_000),
]


@pytest.mark.parametrize(("kind", "body"), NOT_MANIFESTS, ids=[k for k, _ in NOT_MANIFESTS])
def test_invalid_manifest_is_manifest_invalid(
    client: RegistryClient, repo: str, kind: str, body: bytes
) -> None:
    client.push_blob(repo, b"")
    assert_error(client.put_manifest(repo, "t", body, OCI_MANIFEST), 400, "MANIFEST_INVALID")
    assert client.get_manifest(repo, "t").status_code == 404


def test_descriptor_with_malformed_digest_is_rejected(client: RegistryClient, repo: str) -> None:
    body = image_manifest({"mediaType": "a/b", "digest": "sha256:abc", "size": 2})
    assert_error(client.put_manifest(repo, "t", body), 400, "MANIFEST_INVALID", "DIGEST_INVALID")


@pytest.mark.parametrize(
    "content_range",
    ["garbage", "5-2", "bytes 0-9/10", "0-", "-9", "0-9999999999999999999999", "0-99"],
)
def test_bad_content_range_on_patch(client: RegistryClient, repo: str, content_range: str) -> None:
    location = client.start_upload(repo).headers["Location"]
    response = client.request(
        "PATCH",
        client.resolve(location),
        content=b"0123456789",
        headers={"Content-Range": content_range},
    )
    assert response.status_code in (400, 416), response.text
    assert_error(response, response.status_code)


def test_content_length_larger_than_body(
    registry: RegistryServer, client: RegistryClient, repo: str
) -> None:
    """A PUT that promises more bytes than it sends is refused and stores nothing."""
    data = b"only-these-bytes"
    location = client.resolve(client.start_upload(repo).headers["Location"], digest=digest_of(data))
    target = location.raw_path.decode()
    request = (
        f"PUT {target} HTTP/1.1\r\nHost: registry\r\nContent-Length: 100\r\n"
        "Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
    ).encode() + data
    # Half-close: the server sees the end of the body before its promised length.
    url = httpx.URL(registry.url)
    assert url.host
    assert url.port
    with socket.create_connection((url.host, url.port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    if reply:
        status = int(reply.split(b" ", 2)[1])
        assert 400 <= status < 500, reply[:300]
    assert not client.blob_exists(repo, digest_of(data))


def test_content_length_mismatch_on_single_post(
    registry: RegistryServer, client: RegistryClient, repo: str
) -> None:
    """Fewer declared bytes than sent: the digest covers what was declared, so it fails."""
    data = b"0123456789abcdef"
    path = f"/v2/{repo}/blobs/uploads/?digest={digest_of(data)}"
    response = raw_request(
        registry.url,
        (
            f"POST {path} HTTP/1.1\r\nHost: registry\r\nContent-Length: 8\r\n"
            "Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
        ).encode()
        + data,
    )
    assert response.status == 400, response
    assert {e["code"] for e in response.errors()} & {"DIGEST_INVALID", "SIZE_INVALID"}
    assert not client.blob_exists(repo, digest_of(data))
    assert not client.blob_exists(repo, digest_of(data[:8]))


def test_missing_content_length_on_put(
    registry: RegistryServer, client: RegistryClient, repo: str
) -> None:
    """Without Content-Length or chunked framing the body is empty, so the digest fails."""
    data = b"bytes the server never frames"
    location = client.resolve(client.start_upload(repo).headers["Location"], digest=digest_of(data))
    response = raw_request(
        registry.url,
        (
            f"PUT {location.raw_path.decode()} HTTP/1.1\r\nHost: registry\r\n"
            "Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
        ).encode()
        + data,
    )
    assert response.status in (400, 411), response
    if response.status == 400:
        assert {e["code"] for e in response.errors()} & {"DIGEST_INVALID", "SIZE_INVALID"}
    assert not client.blob_exists(repo, digest_of(data))


def _hostile_requests(repo: str, digest: str) -> list[tuple[str, str, dict[str, Any]]]:
    blob = f"/v2/{repo}/blobs/{digest}"
    manifest = f"/v2/{repo}/manifests/t"
    return [
        ("GET", blob, {"headers": {"Range": r}})
        for r in [
            "bytes=",
            "bytes=a-b",
            "bytes=-",
            "bytes=--1",
            "bytes=5-2",
            "items=0-1",
            "bytes=0-1,,",
            "bytes=99999999999999999999999-",
            "bytes=-0",
            "bytes=" + "0-1," * 200 + "2-3",
        ]
    ] + [
        ("GET", "/v2/_catalog", {"params": {"last": "x" * 5000}}),
        ("GET", "/v2/_catalog", {"params": {"n": "9" * 400}}),
        ("GET", f"/v2/{repo}/tags/list", {"params": {"last": "\u00e9\u0000\u2603", "n": "2"}}),
        ("GET", f"/v2/{repo}/tags/list", {"params": {"n": ["1", "2"]}}),
        ("GET", f"/v2/{repo}/referrers/{digest}", {"params": {"artifactType": "\x00/\u2603" * 50}}),
        ("GET", manifest, {"headers": {"Accept": "garbage;;;q=x, */*;q=nan"}}),
        (
            "PUT",
            manifest,
            {"content": b"{}", "headers": {"Content-Type": "\u00e9/\u00e9".encode()}},
        ),
        ("PUT", manifest, {"content": b'{"schemaVersion": 2, "config": {"digest": 5}}'}),
        ("PUT", manifest, {"content": b'{"schemaVersion": "2", "layers": [1, 2]}'}),
        ("PUT", manifest, {"content": b'{"schemaVersion": 2, "manifests": [{"size": -1}]}'}),
        ("PUT", manifest, {"content": b'{"subject": {"digest": "sha256:zz"}, "schemaVersion": 2}'}),
        ("PUT", manifest, {"content": b'{"schemaVersion": 1e400}'}),
        ("PUT", manifest, {"content": b'{"schemaVersion": 2, "a": ' + b"9" * 100_000 + b"}"}),
        ("POST", f"/v2/{repo}/blobs/uploads/", {"params": {"mount": "garbage", "from": "UPPER"}}),
        ("POST", f"/v2/{repo}/blobs/uploads/", {"params": {"mount": digest, "from": "../../etc"}}),
        ("POST", f"/v2/{repo}/blobs/uploads/", {"params": {"digest": ""}, "content": b"x"}),
        ("PATCH", f"/v2/{repo}/blobs/uploads/..%2F..%2Fetc", {"content": b"x"}),
        ("PATCH", f"/v2/{repo}/blobs/uploads/{'x' * 3000}", {"content": b"x"}),
        ("PUT", f"/v2/{repo}/blobs/uploads/%00", {"params": {"digest": digest}}),
        ("DELETE", f"/v2/{repo}/blobs/uploads/", {}),
        ("GET", f"/v2/{repo}/blobs/uploads/", {}),
        ("PUT", f"/v2/{repo}/blobs/{digest}", {"content": b"x"}),
        ("POST", f"/v2/{repo}/manifests/t", {"content": b"{}"}),
        ("PATCH", "/v2/", {"content": b"x"}),
        ("GET", "/v2/" + "a/" * 3000 + "tags/list", {}),
        ("GET", f"/v2/{repo}/tags/list", {"headers": {"X-Big": "x" * 7000}}),
    ]


def test_hostile_requests_never_fail_the_server(client: RegistryClient, repo: str) -> None:
    digest = client.push_blob(repo, b"0123456789")
    client.push_image(repo, "t")
    failures = []
    for method, url, kwargs in _hostile_requests(repo, digest):
        try:
            response = client.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            failures.append(f"{method} {url[:80]} {kwargs!r:.120} -> broken reply: {exc}")
            continue
        if response.status_code >= 500:
            failures.append(f"{method} {url[:80]} {kwargs!r:.120} -> {response.status_code}")
        elif response.status_code >= 400 and (
            response.status_code not in (404, 405, 414, 431)
            or "json" in response.headers.get("Content-Type", "")
        ):
            # The registry's own refusals carry the envelope; bare protocol ones may not.
            assert_error(response, response.status_code)
    assert not failures, "\n".join(failures)
    # And the registry still works.
    assert client.get_blob(repo, digest).content == b"0123456789"


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /v2/a%00b/tags/list HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n",
        b"GET /v2/%ff%fe/tags/list HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n",
        b"GET /v2/_catalog?n=%ff HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n",
        b"GET /v2/x/blobs/sha256:%00 HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n",
        b"PUT /v2/x/manifests/t HTTP/1.1\r\nHost: r\r\nContent-Length: -1\r\n"
        b"Connection: close\r\n\r\n",
        b"PUT /v2/x/manifests/t HTTP/1.1\r\nHost: r\r\nContent-Length: abc\r\n"
        b"Connection: close\r\n\r\n",
        b"PATCH /v2/x/blobs/uploads/u HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\nzz\r\nxx\r\n0\r\n\r\n",
    ],
)
def test_malformed_http_never_fails_the_server(registry: RegistryServer, raw: bytes) -> None:
    try:
        response = raw_request(registry.url, raw)
    except ConnectionAbortedError:
        # Closing the connection without a reply is an acceptable answer to broken HTTP.
        pass
    else:
        assert response.status < 500, response
    with registry.client() as client:
        assert client.request("GET", "/v2/").status_code == 200
