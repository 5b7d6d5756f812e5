"""Two replicas behind a round-robin balancer behave as one registry: the core API and skopeo
through the balancer, content pushed to one replica served by the other, an upload whose chunks
go to alternate replicas, and a replica killed while clients push and pull.

The API checks are a representative set written here on ``e2e.registry.RegistryClient`` (the
e2e functions assume a filesystem registry that serves blob bytes itself; here blob GETs are
redirected to presigned S3 URLs, which these tests follow).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from e2e.clients import Skopeo, access_log, host_of
from e2e.conftest import RegistryServer
from e2e.images import Layout, build_image, build_index, write_layout
from e2e.registry import (
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
    upload_end,
)

from .conftest import Cluster

MIB = 1 << 20
T = TypeVar("T")


# Helpers -----------------------------------------------------------------------------------
def fetch_blob(client: RegistryClient, repo: str, digest: str) -> bytes:
    """A blob's bytes, following the redirect to object storage."""
    response = client.http.get(f"/v2/{repo}/blobs/{digest}", follow_redirects=True)
    assert response.status_code == 200, f"GET blob {digest}: {response.status_code}"
    return response.content


def assert_image(client: RegistryClient, repo: str, reference: str, body: bytes) -> None:
    """``reference`` resolves to the manifest ``body``, and every blob it names is intact."""
    response = client.get_manifest(repo, reference)
    assert response.status_code == 200, f"{repo}:{reference}: {response.status_code}"
    assert response.content == body
    assert response.headers["Docker-Content-Digest"] == digest_of(body)
    manifest = json.loads(body)
    for desc in [manifest["config"], *manifest["layers"]]:
        data = fetch_blob(client, repo, desc["digest"])
        assert digest_of(data) == desc["digest"]
        assert len(data) == desc["size"]


@contextlib.contextmanager
def replica_clients(cluster: Cluster) -> Iterator[dict[str, RegistryClient]]:
    """A client of each replica's own port, by replica name."""
    clients = {name: replica.client() for name, replica in cluster.replicas.items()}
    try:
        yield clients
    finally:
        for client in clients.values():
            client.close()


def path_of(location: str) -> str:
    """The path and query of a ``Location``, to send to another host."""
    return httpx.URL(location).raw_path.decode()


def served_by(replica: RegistryServer, marker: str) -> list[str]:
    """The paths containing ``marker`` in the replica's access log."""
    lines = access_log(replica.stdout_path, replica.stderr_path)
    return [line.path for line in lines if marker in line.path]


# Balancing ---------------------------------------------------------------------------------
def test_consecutive_requests_alternate_between_replicas(cluster: Cluster, repo: str) -> None:
    cluster.balancer.wait_until({name: "UP" for name in cluster.replicas})
    paths = [f"/v2/{repo}/probe-{n}/tags/list" for n in range(6)]
    with cluster.client() as client:
        for path in paths:
            assert_error(client.request("GET", path), 404, "NAME_UNKNOWN")
    deadline = time.monotonic() + 10
    while True:
        seen = {name: served_by(replica, repo) for name, replica in cluster.replicas.items()}
        if sum(map(len, seen.values())) >= len(paths) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    owner = {path: name for name, served in seen.items() for path in served}
    assert sorted(owner) == sorted(paths), seen
    for before, after in itertools.pairwise(paths):
        assert owner[before] != owner[after], f"{before} and {after} both went to {owner[after]}"


# The core API: written through the balancer, read back on each replica ---------------------
def test_blob_uploads_every_way(cluster: Cluster, repo: str) -> None:
    monolithic = os.urandom(300_000)
    chunked = os.urandom(5 * 100_000 + 7)
    last_in_put = os.urandom(250_001)
    single_post = os.urandom(70_000)
    with cluster.client() as client:
        assert client.push_blob(repo, monolithic) == digest_of(monolithic)
        # Five PATCHes and a PUT: the balancer sends them to alternate replicas.
        assert client.push_blob_chunked(repo, chunked, 100_000) == digest_of(chunked)
        pushed = client.push_blob_chunked(repo, last_in_put, 100_000, last_in_put=True)
        assert pushed == digest_of(last_in_put)
        post = client.request(
            "POST",
            f"/v2/{repo}/blobs/uploads/",
            params={"digest": digest_of(single_post)},
            content=single_post,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert post.status_code == 201, post.text
        assert post.headers["Docker-Content-Digest"] == digest_of(single_post)
        for data in (monolithic, chunked, last_in_put, single_post):
            assert fetch_blob(client, repo, digest_of(data)) == data

        with replica_clients(cluster) as replicas:
            for name, direct in replicas.items():
                for data in (monolithic, chunked, last_in_put, single_post):
                    digest = digest_of(data)
                    head = direct.request("HEAD", f"/v2/{repo}/blobs/{digest}")
                    assert head.status_code == 200, name
                    assert head.headers["Content-Length"] == str(len(data))
                    assert head.headers["Docker-Content-Digest"] == digest
                    assert fetch_blob(direct, repo, digest) == data, name

            doomed = digest_of(monolithic)
            assert client.request("DELETE", f"/v2/{repo}/blobs/{doomed}").status_code == 202
            for name, direct in replicas.items():
                assert_error(direct.get_blob(repo, doomed), 404, "BLOB_UNKNOWN")
                assert direct.blob_exists(repo, digest_of(chunked)), name


def test_upload_status_and_cancel_on_either_replica(cluster: Cluster, repo: str) -> None:
    data = os.urandom(200_000)
    with cluster.client() as client, replica_clients(cluster) as replicas:
        location = client.start_upload(repo).headers["Location"]
        patched = client.patch_chunk(location, data, 0)
        assert patched.status_code == 202, patched.text
        session = path_of(patched.headers["Location"])
        for name, direct in replicas.items():
            status = direct.request("GET", session)
            assert status.status_code == 204, name
            assert upload_end(status.headers["Range"]) == len(data) - 1
        assert client.request("DELETE", client.resolve(session)).status_code == 204
        for direct in replicas.values():
            assert_error(direct.request("GET", session), 404, "BLOB_UPLOAD_UNKNOWN")


def test_manifests_tags_and_catalog(cluster: Cluster, repo: str) -> None:
    tags = ["a-tag", "latest", "multi", "v1", "v2"]
    with cluster.client() as client, replica_clients(cluster) as replicas:
        tagged = client.push_image(repo, "v1", layers=2)
        by_digest = client.push_image(repo, layers=1)
        index = index_manifest(
            [
                {"mediaType": OCI_MANIFEST, "digest": tagged.digest, "size": len(tagged.body)},
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": by_digest.digest,
                    "size": len(by_digest.body),
                },
            ]
        )
        client.push_manifest(repo, "multi", index, OCI_INDEX)
        for tag in ("v2", "latest", "a-tag"):
            client.push_manifest(repo, tag, tagged.body)

        for name, direct in replicas.items():
            assert_image(direct, repo, "v1", tagged.body)
            assert_image(direct, repo, tagged.digest, tagged.body)
            assert_image(direct, repo, by_digest.digest, by_digest.body)
            got = direct.get_manifest(repo, "multi")
            assert got.status_code == 200, name
            assert got.content == index
            assert got.headers["Content-Type"] == OCI_INDEX
            listed = direct.request("GET", f"/v2/{repo}/tags/list")
            assert listed.json() == {"name": repo, "tags": tags}, name
            catalog = direct.request("GET", "/v2/_catalog", params={"n": "10000"})
            assert repo in catalog.json()["repositories"], name

        # Pages through the balancer: each next page comes from the other replica.
        seen: list[str] = []
        url: str | None = f"/v2/{repo}/tags/list?n=2"
        while url is not None:
            page = client.request("GET", client.resolve(url))
            assert page.status_code == 200
            seen += page.json()["tags"]
            link = page.headers.get("Link")
            url = link.split(">", 1)[0].lstrip("<") if link else None
        assert seen == tags

        assert client.request("DELETE", f"/v2/{repo}/manifests/v2").status_code == 202
        deleted = client.request("DELETE", f"/v2/{repo}/manifests/{by_digest.digest}")
        assert deleted.status_code == 202
        for direct in replicas.values():
            assert_error(direct.get_manifest(repo, "v2"), 404, "MANIFEST_UNKNOWN")
            assert_error(direct.get_manifest(repo, by_digest.digest), 404, "MANIFEST_UNKNOWN")
            assert_image(direct, repo, "latest", tagged.body)
            listed = direct.request("GET", f"/v2/{repo}/tags/list")
            assert listed.json()["tags"] == ["a-tag", "latest", "multi", "v1"]


def test_referrers(cluster: Cluster, repo: str) -> None:
    sbom_type = "application/vnd.example.sbom.v1"
    signature_type = "application/vnd.example.signature.v1"
    empty = descriptor("application/vnd.oci.empty.v1+json", b"{}")
    with cluster.client() as client, replica_clients(cluster) as replicas:
        subject = client.push_image(repo, "app")
        client.push_blob(repo, b"{}")
        subject_desc = {
            "mediaType": OCI_MANIFEST,
            "digest": subject.digest,
            "size": len(subject.body),
        }
        referrers = {
            kind: image_manifest(empty, [empty], artifact_type=kind, subject=subject_desc)
            for kind in (sbom_type, signature_type)
        }
        for body in referrers.values():
            client.push_manifest(repo, digest_of(body), body)
        url = f"/v2/{repo}/referrers/{subject.digest}"

        for name, direct in replicas.items():
            listed = direct.request("GET", url)
            assert listed.status_code == 200, name
            assert listed.headers["Content-Type"] == OCI_INDEX
            found = {d["digest"]: d["artifactType"] for d in listed.json()["manifests"]}
            assert found == {digest_of(body): kind for kind, body in referrers.items()}, name
            filtered = direct.request("GET", url, params={"artifactType": sbom_type})
            assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
            assert [d["digest"] for d in filtered.json()["manifests"]] == [
                digest_of(referrers[sbom_type])
            ]

        signature = digest_of(referrers[signature_type])
        assert client.request("DELETE", f"/v2/{repo}/manifests/{signature}").status_code == 202
        for name, direct in replicas.items():
            listed = direct.request("GET", url)
            assert [d["digest"] for d in listed.json()["manifests"]] == [
                digest_of(referrers[sbom_type])
            ], name


# Replica to replica ------------------------------------------------------------------------
def test_push_to_one_replica_pull_from_the_other(cluster: Cluster, repo: str) -> None:
    big = os.urandom(6 * MIB + 11)
    with replica_clients(cluster) as replicas:
        r1, r2 = replicas["r1"], replicas["r2"]
        image = r1.push_image(repo, "v1", layers=2)
        big_digest = r1.push_blob_chunked(repo, big, 2 * MIB)

        assert_image(r2, repo, "v1", image.body)
        assert_image(r2, repo, image.digest, image.body)
        # The second replica sends the client to the bucket the first one wrote to.
        redirect = r2.get_blob(repo, big_digest)
        assert redirect.status_code == 307
        assert cluster.bucket in redirect.headers["Location"]
        assert httpx.get(redirect.headers["Location"], timeout=60).content == big
        assert r2.request("GET", f"/v2/{repo}/tags/list").json()["tags"] == ["v1"]

        # And back: what the second replica deletes, the first no longer serves.
        assert r2.request("DELETE", f"/v2/{repo}/manifests/{image.digest}").status_code == 202
        assert_error(r1.get_manifest(repo, "v1"), 404, "MANIFEST_UNKNOWN")


def test_chunked_upload_alternating_replicas(cluster: Cluster, repo: str) -> None:
    """Each PATCH goes straight to the other replica's port, on the same upload path."""
    sizes = [1 * MIB, 6 * MIB, 1 * MIB + 3, 700_001]
    data = os.urandom(sum(sizes) + 12_345)  # the rest travels in the closing PUT
    with replica_clients(cluster) as replicas:
        names = list(replicas)
        path = path_of(replicas[names[0]].start_upload(repo).headers["Location"])
        offset = 0
        for number, size in enumerate(sizes, start=1):
            name = names[number % 2]
            response = replicas[name].patch_chunk(path, data[offset : offset + size], offset)
            assert response.status_code == 202, f"PATCH {number} on {name}: {response.text}"
            offset += size
            assert upload_end(response.headers["Range"]) == offset - 1
            path = path_of(response.headers["Location"])
        closing = replicas[names[(len(sizes) + 1) % 2]]
        done = closing.request(
            "PUT",
            closing.resolve(path, digest=digest_of(data)),
            content=data[offset:],
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{len(data) - 1}",
            },
        )
        assert done.status_code == 201, done.text
        assert done.headers["Docker-Content-Digest"] == digest_of(data)
        for direct in replicas.values():
            assert fetch_blob(direct, repo, digest_of(data)) == data


# A real client -----------------------------------------------------------------------------
@pytest.mark.clients
def test_skopeo_round_trips(cluster: Cluster, repo: str, tmp_path: Path) -> None:
    images = [
        build_image(
            [{"etc/motd": f"{repo} on {arch}\n".encode()}, {"data.bin": os.urandom(200_000)}],
            architecture=arch,
        )
        for arch in ("amd64", "arm64")
    ]
    index = build_index(images)
    source = write_layout(tmp_path / "source", {"multi": index})
    skopeo = Skopeo(host_of(cluster.url), tmp_path / "skopeo")

    skopeo.copy(f"oci:{source}:multi", skopeo.ref(repo, "multi"), "--all", "--preserve-digests")
    out = Layout(tmp_path / "out")
    skopeo.copy(skopeo.ref(repo, "multi"), f"oci:{out.path}:multi", "--all", "--preserve-digests")
    assert out.descriptor("multi")["digest"] == index.digest
    assert out.digests() == {index.digest, *index.blobs}
    for digest, data in index.blobs.items():
        assert out.blob(digest) == data

    # From one replica to the other, under a new name: the layers mount across replicas.
    r1 = host_of(cluster.replicas["r1"].url)
    r2 = host_of(cluster.replicas["r2"].url)
    copied = f"{repo}-copy"
    skopeo.copy(
        f"docker://{r1}/{repo}:multi",
        f"docker://{r2}/{copied}:multi",
        "--all",
        "--preserve-digests",
    )
    assert skopeo.inspect_raw(skopeo.ref(copied, "multi")) == index.manifest.data
    assert skopeo.list_tags(f"docker://{skopeo.host}/{copied}")["Tags"] == ["multi"]
    with cluster.client() as client:
        for image in images:
            assert_image(client, copied, image.digest, image.manifest.data)


# A replica dies ----------------------------------------------------------------------------
ATTEMPTS = 6
CLIENTS = 4


class Transient(Exception):
    """A failure the balancer reports for a replica that went away (502, 503, 504)."""


def expect(response: httpx.Response, status: int) -> httpx.Response:
    request = f"{response.request.method} {response.request.url.path}"
    if response.status_code in (502, 503, 504):
        raise Transient(f"{request}: {response.status_code}")
    assert response.status_code == status, (
        f"{request}: {response.status_code} {response.text[:300]}"
    )
    return response


@dataclass
class Ledger:
    """What the clients were told is committed (a 201), and the failures they retried."""

    blobs: list[tuple[str, str, bytes]] = field(default_factory=list)
    manifests: list[tuple[str, str, bytes]] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        with self.lock:
            return len(self.manifests)


def with_retries(ledger: Ledger, operation: Callable[[], T]) -> T:
    """Run ``operation``; when the balancer or the connection fails, run it again."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return operation()
        except (httpx.TransportError, Transient) as error:
            with ledger.lock:
                ledger.retried.append(f"{type(error).__name__}: {error}")
            if attempt == ATTEMPTS:
                raise
            time.sleep(0.1 * attempt)
    raise AssertionError("unreachable")


def push_blob(client: RegistryClient, repo: str, data: bytes) -> str:
    """One attempt: POST, a PATCH with the first half, a PUT with the rest."""
    digest = digest_of(data)
    started = expect(client.http.post(f"/v2/{repo}/blobs/uploads/"), 202)
    half = len(data) // 2
    patched = expect(client.patch_chunk(started.headers["Location"], data[:half], 0), 202)
    expect(
        client.http.put(
            client.resolve(patched.headers["Location"], digest=digest),
            content=data[half:],
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{half}-{len(data) - 1}",
            },
        ),
        201,
    )
    return digest


def put_manifest(client: RegistryClient, repo: str, tag: str, body: bytes) -> None:
    expect(client.put_manifest(repo, tag, body), 201)


def pull_image(client: RegistryClient, repo: str, tag: str, body: bytes) -> None:
    """One attempt at reading back an image this client pushed."""
    got = expect(client.get_manifest(repo, tag), 200)
    assert got.content == body
    manifest = json.loads(body)
    for desc in [manifest["config"], *manifest["layers"]]:
        redirect = client.http.get(f"/v2/{repo}/blobs/{desc['digest']}")
        if redirect.status_code == 307:
            blob = httpx.get(redirect.headers["Location"], timeout=30)
            assert blob.status_code == 200, f"presigned GET: {blob.status_code}"
        else:
            blob = expect(redirect, 200)
        assert digest_of(blob.content) == desc["digest"]


def push_and_pull(cluster: Cluster, repo: str, stop: threading.Event, ledger: Ledger) -> None:
    """Push images to ``repo`` and read each back, until told to stop."""
    with cluster.client() as client:
        number = 0
        while not stop.is_set():
            config = json.dumps({"repo": repo, "n": number, "os": "linux"}).encode()
            layer = os.urandom(96_000)
            for data in (config, layer):
                digest = with_retries(ledger, partial(push_blob, client, repo, data))
                with ledger.lock:
                    ledger.blobs.append((repo, digest, data))
            body = image_manifest(descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, layer)])
            tag = f"n{number}"
            with_retries(ledger, partial(put_manifest, client, repo, tag, body))
            with ledger.lock:
                ledger.manifests.append((repo, tag, body))
            with_retries(ledger, partial(pull_image, client, repo, tag, body))
            number += 1


def wait_for(ledger: Ledger, count: int, futures: list[Future[None]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while ledger.count() < count:
        for future in futures:
            if future.done():
                future.result()  # a worker that failed: raise its error here
        assert time.monotonic() < deadline, (
            f"{ledger.count()} of {count} pushes in {timeout} s; retried: {ledger.retried[-5:]}"
        )
        time.sleep(0.05)


def test_replica_killed_while_clients_push_and_pull(cluster: Cluster, repo: str) -> None:
    victim = cluster.replicas["r1"]
    repos = [f"{repo}/client-{n}" for n in range(CLIENTS)]
    ledger = Ledger()
    stop = threading.Event()
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(push_and_pull, cluster, name, stop, ledger) for name in repos]
            try:
                wait_for(ledger, 2 * CLIENTS, futures, timeout=30)
                victim.kill()  # SIGKILL to its process group: the server and its worker
                wait_for(ledger, ledger.count() + 3 * CLIENTS, futures, timeout=60)
            finally:
                stop.set()
            for future in futures:
                future.result()
        cluster.balancer.wait_until({"r1": "DOWN", "r2": "UP"})

        # Nothing the clients were told is committed is lost.
        with cluster.client() as client:
            for name, digest, data in ledger.blobs:
                assert fetch_blob(client, name, digest) == data, f"{name}@{digest}"
            for name, tag, body in ledger.manifests:
                assert_image(client, name, tag, body)
                assert_image(client, name, digest_of(body), body)
            for name in repos:
                listed = client.request("GET", f"/v2/{name}/tags/list").json()["tags"]
                assert sorted(listed) == sorted(t for r, t, _ in ledger.manifests if r == name)
    finally:
        if victim.process is None:
            victim.start()
        cluster.balancer.wait_until({"r1": "UP", "r2": "UP"})
