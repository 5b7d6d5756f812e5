"""The measured workloads. Each returns :class:`Measurement` values keyed by metric.

Every workload checks what it timed outside the timed part: pushed blobs are pulled back and
hashed once, manifests and tags are read back, so a server that answers fast but wrongly fails.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from loadgen import run_load
from procs import RssSampler, machine_busy_seconds, tree_cpu_seconds, tree_pss
from registry import (
    MANIFEST_ACCEPT,
    BlobFile,
    RegistryClient,
    RegistryError,
    image_config,
    image_manifest,
    sha256,
)
from servers import RunningServer

__all__ = [
    "DEFAULT",
    "QUICK",
    "S3_DEFAULT",
    "S3_QUICK",
    "Blobs",
    "Measurement",
    "Meter",
    "Outcome",
    "Sizes",
    "Step",
    "attempt",
    "direct_pull_steps",
    "rss_step",
    "steps",
]

MiB = 1 << 20


@dataclass(frozen=True, slots=True)
class Sizes:
    blob: int
    chunk: int
    rss_blob: int
    pull_clients: int
    pull_repeats: int
    rps_seconds: int
    rps_warmup: int
    rps_connections: int
    small_push_seconds: float
    small_push_clients: int
    layer_size: int


DEFAULT = Sizes(
    blob=256 * MiB,
    chunk=16 * MiB,
    rss_blob=1024 * MiB,
    pull_clients=8,
    pull_repeats=3,
    rps_seconds=3,
    rps_warmup=1,
    rps_connections=32,
    small_push_seconds=4.0,
    small_push_clients=8,
    layer_size=1024,
)
QUICK = Sizes(
    blob=8 * MiB,
    chunk=1 * MiB,
    rss_blob=32 * MiB,
    pull_clients=8,
    pull_repeats=1,
    rps_seconds=1,
    rps_warmup=0,
    rps_connections=32,
    small_push_seconds=1.0,
    small_push_clients=8,
    layer_size=1024,
)
# An S3 server in Python (moto) takes uploads at tens of MiB/s: smaller blobs keep a round
# to a couple of minutes. Pulls of them are quick, so more of them: a measurement of a third
# of a second swung by a tenth between rounds with the S3 server's pauses.
S3_DEFAULT = dataclasses.replace(
    DEFAULT, blob=64 * MiB, chunk=4 * MiB, rss_blob=256 * MiB, pull_repeats=8
)
S3_QUICK = dataclasses.replace(QUICK, blob=4 * MiB, chunk=1 * MiB, rss_blob=16 * MiB)


@dataclass(frozen=True, slots=True)
class Blobs:
    monolithic: BlobFile
    chunked: BlobFile
    large: BlobFile
    # One per client, for the pulls in which no two clients pull the same blob (S3 mode).
    distinct: tuple[BlobFile, ...] = ()


@dataclass(frozen=True, slots=True)
class Measurement:
    value: float
    wall: float = 0.0
    client_cpu: float = 0.0  # CPU seconds of the benchmark process and its load generators
    server_cpu: float = 0.0  # CPU seconds of the server's process tree
    other_cpu: float = 0.0  # CPU seconds of everything else on the machine
    tool: str = ""
    store_cpu: float = 0.0  # CPU seconds of the S3 server and database backends it drove


def _client_cpu() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


class Meter:
    """Wall time and CPU of both sides over a ``with`` block."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.wall = self.client_cpu = self.server_cpu = self.other_cpu = self.store_cpu = 0.0

    def __enter__(self) -> Meter:
        stores = self.server.spec.stores
        self._stores0 = {} if stores is None else stores.sample()
        self._machine0 = machine_busy_seconds()
        self._server0 = tree_cpu_seconds(self.server.pid)
        self._client0 = _client_cpu()
        self._t0 = time.perf_counter()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.wall = time.perf_counter() - self._t0
        self.client_cpu = _client_cpu() - self._client0
        self.server_cpu = tree_cpu_seconds(self.server.pid) - self._server0
        busy = machine_busy_seconds() - self._machine0
        stores = self.server.spec.stores
        if stores is not None:
            self.store_cpu = stores.spent(self._stores0, stores.sample())
        self.other_cpu = max(0.0, busy - self.client_cpu - self.server_cpu - self.store_cpu)

    def measurement(self, value: float, tool: str = "") -> Measurement:
        return Measurement(
            value,
            self.wall,
            self.client_cpu,
            self.server_cpu,
            self.other_cpu,
            tool,
            self.store_cpu,
        )


# -- blob pushes and pulls ----------------------------------------------------------------------


def _connected(server: RunningServer) -> RegistryClient:
    client = server.client()
    if not client.ping():
        client.close()
        raise RegistryError("GET /v2/ failed")
    return client


def push_file(server: RunningServer, repo: str, blob: BlobFile) -> None:
    """Push ``blob`` into ``repo``, untimed."""
    with _connected(server) as client:
        client.push_file(repo, blob)


def push_monolithic(server: RunningServer, blob: BlobFile) -> Measurement:
    os.sync()  # start with no dirty pages from earlier writes
    with _connected(server) as client:
        with Meter(server) as meter:
            client.push_file("bench/mono", blob)
        client.verify_pull("bench/mono", blob)
    return meter.measurement(blob.size / MiB / meter.wall)


def push_chunked(server: RunningServer, blob: BlobFile, chunk: int) -> Measurement:
    os.sync()
    with _connected(server) as client:
        with Meter(server) as meter:
            client.push_file_chunked("bench/chunked", blob, chunk)
        client.verify_pull("bench/chunked", blob)
    return meter.measurement(blob.size / MiB / meter.wall)


def _check_redirect(redirected: bool, redirect: bool | None) -> None:
    """``redirect``: whether the registry must answer blob GETs with a redirect (to object
    storage), or None if either will do."""
    if redirect is not None and redirected != redirect:
        wanted = "a redirect to storage" if redirect else "the bytes, not a redirect"
        raise RegistryError(f"blob GET: wanted {wanted}")


def pull_one(
    server: RunningServer, blob: BlobFile, repeats: int, redirect: bool | None = None
) -> Measurement:
    """Pull ``blob`` (pushed by :func:`push_monolithic`) ``repeats`` times in a row, following
    any redirect. One untimed pull first: a server restarted for this step (redirects off)
    would otherwise pay its first use of the read path (imports, storage client, connections)
    inside the measurement, which a long-running server pays once."""
    os.sync()
    with _connected(server) as client:
        _check_redirect(client.pull("bench/mono", blob), redirect)
        with Meter(server) as meter:
            for _ in range(repeats):
                _check_redirect(client.pull("bench/mono", blob), redirect)
    return meter.measurement(repeats * blob.size / MiB / meter.wall)


def _in_threads(
    server: RunningServer, count: int, work: Callable[[RegistryClient, int], None]
) -> float:
    """Run ``work`` on ``count`` connected clients started together; return the wall time."""
    clients = [_connected(server) for _ in range(count)]
    barrier = threading.Barrier(count + 1)
    errors: list[BaseException] = []

    def run(client: RegistryClient, index: int) -> None:
        try:
            barrier.wait()
            work(client, index)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(c, i)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    start = time.perf_counter()
    try:
        barrier.wait()
        start = time.perf_counter()
    finally:
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
        for client in clients:
            client.close()
    if errors:
        raise errors[0]
    return elapsed


def pull_many(
    server: RunningServer,
    blob: BlobFile,
    clients: int,
    redirect: bool | None = None,
    repeats: int = 1,
) -> Measurement:
    """``clients`` clients started together, each pulling ``blob`` ``repeats`` times in a row
    (a single pull of all of them lasts well under a second: one hiccup would move it).

    One untimed round of the same shape first (each client pulls once, all together), as
    :func:`pull_one` pulls once: the first burst of concurrent streams on a server restarted
    for this step grows its heap to hold their buffers (some 80 MiB of fresh pages for
    Dockyard's workers, 10% more CPU in that burst), which a long-running server pays once."""
    return pull_together(server, "bench/mono", [blob] * clients, redirect, repeats)


def pull_many_distinct(
    server: RunningServer, blobs: tuple[BlobFile, ...], redirect: bool | None, repeats: int
) -> Measurement:
    """As :func:`pull_many`, but client ``i`` pulls ``blobs[i]`` (pushed first, untimed): no
    two pulls read the same blob, so Dockyard's sharing of concurrent reads of one blob has
    nothing to share, and each byte comes from storage once per client."""
    for blob in blobs:
        push_file(server, "bench/distinct", blob)
    return pull_together(server, "bench/distinct", list(blobs), redirect, repeats)


def pull_together(
    server: RunningServer,
    repo: str,
    blobs: list[BlobFile],
    redirect: bool | None,
    repeats: int,
) -> Measurement:
    """Client ``i`` of ``len(blobs)``, all started together, pulls ``blobs[i]`` ``repeats``
    times in a row, after an untimed round of one pull each; aggregate MiB/s."""
    os.sync()

    def pulls(client: RegistryClient, index: int) -> None:
        for _pull in range(repeats):
            _check_redirect(client.pull(repo, blobs[index]), redirect)

    def warm(client: RegistryClient, index: int) -> None:
        _check_redirect(client.pull(repo, blobs[index]), redirect)

    _in_threads(server, len(blobs), warm)
    with Meter(server) as meter:
        elapsed = _in_threads(server, len(blobs), pulls)
    return meter.measurement(repeats * sum(blob.size for blob in blobs) / MiB / elapsed)


# -- small requests under load ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Endpoint:
    metric: str
    method: str
    path: str
    headers: dict[str, str]


def _prepare_small_image(server: RunningServer, layer_size: int) -> list[_Endpoint]:
    """Push one small image with ten tags, check each endpoint once, and describe them."""
    repo = "bench/small-reads"
    with _connected(server) as client:
        layer = os.urandom(layer_size)
        layer_digest = client.push_bytes(repo, layer)
        config = image_config([layer_digest], "reads")
        config_digest = client.push_bytes(repo, config)
        manifest = image_manifest((config_digest, len(config)), [(layer_digest, len(layer))])
        tags = ["latest", *(f"v{i}" for i in range(1, 10))]
        for tag in tags:
            client.put_manifest(repo, tag, manifest)

        got = client.get_manifest(repo, "latest")
        if got.body != manifest or got.header("docker-content-digest") != sha256(manifest):
            raise RegistryError("manifest GET by tag returned other bytes or digest")
        head = client.head(f"/v2/{repo}/manifests/latest", MANIFEST_ACCEPT)
        if head.header("content-length") != str(len(manifest)):
            raise RegistryError(f"manifest HEAD Content-Length {head.header('content-length')}")
        head = client.head(f"/v2/{repo}/blobs/{layer_digest}")
        if head.header("content-length") != str(len(layer)):
            raise RegistryError(f"blob HEAD Content-Length {head.header('content-length')}")
        if client.get_blob_bytes(repo, layer_digest) != layer:
            raise RegistryError("blob GET returned other bytes")
        if sorted(client.tags(repo)) != sorted(tags):
            raise RegistryError(f"tags list returned {client.tags(repo)}")

    accept = {"Accept": MANIFEST_ACCEPT}
    return [
        _Endpoint("rps_manifest_get", "GET", f"/v2/{repo}/manifests/latest", accept),
        _Endpoint("rps_manifest_head", "HEAD", f"/v2/{repo}/manifests/latest", accept),
        _Endpoint("rps_blob_head", "HEAD", f"/v2/{repo}/blobs/{layer_digest}", {}),
        # On S3 with redirects on, the answer is the 307 (load tools do not follow it): the
        # registry's own part of a redirected pull.
        _Endpoint("rps_blob_get", "GET", f"/v2/{repo}/blobs/{layer_digest}", {}),
        _Endpoint("rps_tags_list", "GET", f"/v2/{repo}/tags/list", {}),
    ]


def requests_per_second(server: RunningServer, sizes: Sizes) -> dict[str, Measurement]:
    results: dict[str, Measurement] = {}
    for endpoint in _prepare_small_image(server, sizes.layer_size):
        url = server.url(endpoint.path)
        args = (url, endpoint.method, endpoint.headers)
        if sizes.rps_warmup:
            run_load(*args, sizes.rps_warmup, sizes.rps_connections)
        with Meter(server) as meter:
            load = run_load(*args, sizes.rps_seconds, sizes.rps_connections)
        results[endpoint.metric] = meter.measurement(load.requests_per_second, load.tool)
    return results


# -- small image pushes -------------------------------------------------------------------------


def _push_small_image(client: RegistryClient, repo: str, tag: str, layer_size: int) -> bytes:
    layers = [os.urandom(layer_size) for _ in range(3)]
    digests = [client.push_bytes(repo, layer) for layer in layers]
    config = image_config(digests, tag)
    config_digest = client.push_bytes(repo, config)
    manifest = image_manifest((config_digest, len(config)), [(d, layer_size) for d in digests])
    client.put_manifest(repo, tag, manifest)
    return manifest


def small_pushes(server: RunningServer, sizes: Sizes) -> Measurement:
    """Clients push distinct 3-layer OCI images to one repository for a fixed time."""
    repo = "bench/small-pushes"
    counts = [0] * sizes.small_push_clients
    last: dict[int, tuple[str, bytes]] = {}

    def work(client: RegistryClient, index: int) -> None:
        deadline = time.perf_counter() + sizes.small_push_seconds
        while time.perf_counter() < deadline:
            tag = f"c{index}-{counts[index]}"
            last[index] = (tag, _push_small_image(client, repo, tag, sizes.layer_size))
            counts[index] += 1

    os.sync()
    with _connected(server) as warm:  # first use of each code path, untimed
        _push_small_image(warm, repo, "warmup", sizes.layer_size)
    with Meter(server) as meter:
        elapsed = _in_threads(server, sizes.small_push_clients, work)

    with _connected(server) as client:
        tag, manifest = last[0]
        if client.get_manifest(repo, tag).body != manifest:
            raise RegistryError(f"{repo}:{tag} reads back other bytes")
        for layer in image_layers(manifest):
            if sha256(client.get_blob_bytes(repo, layer)) != layer:
                raise RegistryError(f"{repo} layer {layer} reads back other bytes")
        if not set(client.tags(repo)) >= {f"c{i}-{n - 1}" for i, n in enumerate(counts) if n}:
            raise RegistryError(f"{repo} tags list misses pushed tags")
    return meter.measurement(sum(counts) / elapsed)


def image_layers(manifest: bytes) -> list[str]:
    return [str(layer["digest"]) for layer in json.loads(manifest)["layers"]]


# -- memory ------------------------------------------------------------------------------------


def rss(server: RunningServer, blob: BlobFile) -> dict[str, Measurement]:
    """RSS of a freshly started server's tree while ``blob`` is pushed and then pulled."""
    mib = float(MiB)
    with _connected(server) as client:
        os.sync()
        with RssSampler(server.pid) as sampler:
            time.sleep(1.0)
            pss = tree_pss(server.pid) / mib
            sampler.phase("push")
            client.push_file("bench/large", blob)
            sampler.phase("pull")
            client.verify_pull("bench/large", blob)
    baseline = statistics.median(sampler.samples["idle"]) / mib
    peak = max(sampler.samples["push"] + sampler.samples["pull"]) / mib
    return {
        "rss_baseline": Measurement(baseline),
        "rss_peak": Measurement(peak),
        "rss_growth": Measurement(peak - baseline),
        "pss_baseline": Measurement(pss),
    }


# -- the list of steps -------------------------------------------------------------------------

Outcome = Measurement | str  # a measurement, or why there is none


@dataclass(frozen=True, slots=True)
class Step:
    """One workload: the metrics it yields, and what it needs done before on the same server."""

    keys: tuple[str, ...]
    run: Callable[[RunningServer], dict[str, Measurement]]
    needs: str | None = None


def steps(sizes: Sizes, blobs: Blobs, redirect: bool | None = None) -> list[Step]:
    """Every workload except memory, in the order they run on one server. ``redirect``: whether
    blob GETs must be redirected (S3 storage with redirects on), or None if either will do."""
    return [
        Step(
            ("push_monolithic",),
            lambda s: {"push_monolithic": push_monolithic(s, blobs.monolithic)},
        ),
        Step(
            ("push_chunked",),
            lambda s: {"push_chunked": push_chunked(s, blobs.chunked, sizes.chunk)},
        ),
        *_pull_steps(sizes, blobs, redirect, ""),
        Step(
            (
                "rps_manifest_get",
                "rps_manifest_head",
                "rps_blob_head",
                "rps_blob_get",
                "rps_tags_list",
            ),
            lambda s: requests_per_second(s, sizes),
        ),
        Step(("small_pushes",), lambda s: {"small_pushes": small_pushes(s, sizes)}),
    ]


def _pull_steps(sizes: Sizes, blobs: Blobs, redirect: bool | None, suffix: str) -> list[Step]:
    one, many = f"pull_1{suffix}", f"pull_n{suffix}"
    return [
        Step(
            (one,),
            lambda s: {one: pull_one(s, blobs.monolithic, sizes.pull_repeats, redirect)},
            needs="push_monolithic",
        ),
        Step(
            (many,),
            lambda s: {
                many: pull_many(
                    s, blobs.monolithic, sizes.pull_clients, redirect, sizes.pull_repeats
                )
            },
            needs="push_monolithic",
        ),
    ]


def direct_pull_steps(sizes: Sizes, blobs: Blobs) -> list[Step]:
    """The blob pulls again, on a server restarted with redirects off over the same storage:
    the bytes come through the registry; then the pulls of a different blob per client."""
    distinct = "pull_n_distinct_direct"
    return [
        *_pull_steps(sizes, blobs, False, "_direct"),
        Step(
            (distinct,),
            lambda s: {distinct: pull_many_distinct(s, blobs.distinct, False, sizes.pull_repeats)},
        ),
    ]


def rss_step(blobs: Blobs) -> Step:
    """Memory, measured on a server of its own, freshly started."""
    keys = ("rss_baseline", "rss_peak", "rss_growth", "pss_baseline")
    return Step(keys, lambda s: rss(s, blobs.large))


def attempt(server: RunningServer, step: Step, done: dict[str, Outcome]) -> dict[str, Outcome]:
    """Run ``step``; any failure becomes an error outcome for each of its metrics."""
    if step.needs is not None and not isinstance(done.get(step.needs), Measurement):
        return dict.fromkeys(step.keys, f"skipped: {step.needs} failed")
    try:
        server.check_alive()
        return dict(step.run(server))
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        return dict.fromkeys(step.keys, error)
