"""Storage lifecycle over real HTTP, on SQLite and PostgreSQL: immutable tags, quotas (a blob
shared by repositories of a namespace counted once, refused pushes leaving nothing, pushes
racing at the quota's edge), exact usage after pushes, mounts and deletes, pull counts, and
retention policies (dry run, keep-last with patterns, pulled-within)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select, update

from dockyard.lifecycle.service import LifecycleService
from dockyard.metadata.factory import open_store
from dockyard.metadata.schema import (
    audit_events,
    blobs,
    repositories,
    repository_blobs,
    tag_pulls,
    tags,
)

from .conftest import DISTRIBUTION, RegistryServer, ServerFactory
from .registry import (
    OCI_CONFIG,
    OCI_LAYER,
    RegistryClient,
    assert_error,
    descriptor,
    digest_of,
    image_manifest,
)

pytestmark = pytest.mark.skipif(DISTRIBUTION, reason="Dockyard's own storage lifecycle")

T = TypeVar("T")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    from metadata.test_postgres import fresh_database

    with fresh_database() as url:
        yield url


@pytest.fixture(scope="module")
def server(
    database: str | None,
    tmp_path_factory: pytest.TempPathFactory,
    unused_tcp_port_factory: Callable[[], int],
) -> Iterator[RegistryServer]:
    """One server per database; the collector and scheduled retention off (the tests run
    them: a scheduled pass within the server's first minute would race their dry runs), no
    grace."""
    from .conftest import _factory

    config: dict[str, Any] = {
        "gc": {"enabled": False, "grace": 0},
        "retention": {"enabled": False},
    }
    if database is not None:
        config["database"] = {"url": database}
    factory = _factory(lambda: tmp_path_factory.mktemp("lifecycle"), unused_tcp_port_factory)
    start = next(factory)
    yield start(config)
    factory.close()


def _url(server: RegistryServer) -> str:
    configured = server.config.get("database", {}).get("url")
    return configured or f"sqlite:///{server.root / 'dockyard.db'}"


def _with_service(
    server: RegistryServer, work: Callable[[LifecycleService], Coroutine[Any, Any, T]]
) -> T:
    async def run() -> T:
        store = await open_store(_url(server), migrate=False)
        try:
            return await work(LifecycleService(store.database))
        finally:
            await store.close()

    return asyncio.run(run())


def _read(server: RegistryServer, query: Any) -> list[Any]:
    async def run() -> list[Any]:
        store = await open_store(_url(server), migrate=False)
        try:
            return list(await store.database.read(query))
        finally:
            await store.close()

    return asyncio.run(run())


def _write(server: RegistryServer, statement: Any) -> None:
    async def run() -> None:
        store = await open_store(_url(server), migrate=False)
        try:
            await store.database.transaction(lambda conn: conn.execute(statement))
        finally:
            await store.close()

    asyncio.run(run())


def _collect(server: RegistryServer, delete_untagged: bool = False) -> None:
    """One garbage collection, as ``dockyard gc`` runs it (in this process: faster)."""
    from dockyard.config import read_config
    from dockyard.maintenance import collect_garbage

    loaded = read_config(str(server.config_path), {})
    asyncio.run(collect_garbage(loaded.config, delete_untagged=delete_untagged or None))


def _cli(server: RegistryServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "DOCKYARD_"))}
    # `gc` takes the config as an argument, the lifecycle commands as an option.
    config = [str(server.config_path)] if args[0] == "gc" else ["--config", str(server.config_path)]
    return subprocess.run(
        [sys.executable, "-m", "dockyard", *args, *config],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def _set_quota(server: RegistryServer, namespace: str, limit: int) -> None:
    _with_service(server, lambda s: s.set_quota("namespace", namespace, limit))


def _remove_policy(server: RegistryServer, policy_id: int) -> None:
    assert _with_service(server, lambda s: s.remove_retention_policy(policy_id))


def _namespace() -> str:
    return f"ns{secrets.token_hex(4)}"


def _push_image(
    client: RegistryClient, repo: str, tag: str, *layers: bytes, config: bytes | None = None
) -> str:
    config = config if config is not None else json.dumps({"tag": tag, "repo": repo}).encode()
    client.push_blob(repo, config)
    for layer in layers:
        client.push_blob(repo, layer)
    body = image_manifest(
        descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, layer) for layer in layers]
    )
    return client.push_manifest(repo, tag, body)


def _manifest(tag: str) -> tuple[bytes, bytes]:
    config = json.dumps({"tag": tag, "n": secrets.token_hex(4)}).encode()
    return config, image_manifest(descriptor(OCI_CONFIG, config))


def _usage(server: RegistryServer, namespace: str) -> dict[str, Any]:
    spaces = _with_service(server, lambda s: s.usage(namespace))
    assert len(spaces) == 1
    space = spaces[0]
    return {
        "namespace": space.bytes,
        **{repo.repository: repo.bytes for repo in space.repositories},
    }


def _recount(server: RegistryServer, namespace: str) -> dict[str, int]:
    """Usage recomputed from the links themselves: what the counters must equal."""
    rows = _read(
        server,
        select(repositories.c.name, blobs.c.digest, blobs.c.size)
        .select_from(
            repository_blobs.join(
                repositories, repositories.c.id == repository_blobs.c.repository_id
            ).join(blobs, blobs.c.digest == repository_blobs.c.digest)
        )
        .where(repositories.c.name.startswith(namespace + "/")),
    )
    names = _read(
        server,
        select(repositories.c.name).where(repositories.c.name.startswith(namespace + "/")),
    )
    result: dict[str, int] = {row.name: 0 for row in names}
    distinct: dict[str, int] = {}
    for row in rows:
        result[row.name] = result.get(row.name, 0) + row.size
        distinct[row.digest] = row.size
    result["namespace"] = sum(distinct.values())
    return result


# -- immutable tags ------------------------------------------------------------------------


def test_immutable_tag_refuses_moves_and_deletes_but_takes_the_same_digest(
    server: RegistryServer,
) -> None:
    ns = _namespace()
    repo = f"{ns}/app"
    rule = _with_service(server, lambda s: s.add_immutable_rule(f"{ns}/*", "v*"))
    with server.client() as client:
        first = _push_image(client, repo, "v1", b"layer one")
        config, other = _manifest("other")
        client.push_blob(repo, config)
        other_digest = digest_of(other)

        # The same digest again: accepted.
        again = client.put_manifest(repo, "v1", client.get_manifest(repo, "v1").content)
        assert again.status_code == 201, again.text
        # Another digest: refused, and the tag still names the first.
        moved = client.put_manifest(repo, "v1", other)
        errors = assert_error(moved, 409, "TAG_IMMUTABLE")
        assert "immutable" in errors[0]["message"]
        assert errors[0]["detail"] == {"repository": repo, "tag": "v1"}
        assert client.get_manifest(repo, "v1").headers["Docker-Content-Digest"] == first
        # Deleting the tag, or the manifest it names by digest: refused.
        assert_error(client.http.delete(f"/v2/{repo}/manifests/v1"), 409, "TAG_IMMUTABLE")
        assert_error(client.http.delete(f"/v2/{repo}/manifests/{first}"), 409, "TAG_IMMUTABLE")
        assert client.get_manifest(repo, first).status_code == 200

        # Tags the rule does not match move and go as usual; other namespaces too.
        client.push_manifest(repo, "latest", client.get_manifest(repo, "v1").content)
        client.push_manifest(repo, "latest", other)
        assert client.http.delete(f"/v2/{repo}/manifests/latest").status_code == 202
        elsewhere = f"{_namespace()}/app"
        _push_image(client, elsewhere, "v1", b"layer one")
        client.push_blob(elsewhere, config)
        client.push_manifest(elsewhere, "v1", other)

        # A first push of a new matching tag is fine; then it is fixed too.
        client.push_manifest(repo, "v2", other)
        assert_error(
            client.put_manifest(repo, "v2", client.get_manifest(repo, "v1").content),
            409,
            "TAG_IMMUTABLE",
        )

        # Without the rule, the tag moves and goes again.
        assert _with_service(server, lambda s: s.remove_immutable_rule(rule.id))
        client.push_manifest(repo, "v1", other)
        assert client.get_manifest(repo, "v1").headers["Docker-Content-Digest"] == other_digest
        assert client.http.delete(f"/v2/{repo}/manifests/v1").status_code == 202


def test_immutable_rules_through_the_cli(server: RegistryServer) -> None:
    ns = _namespace()
    repo = f"{ns}/tool"
    added = _cli(server, "immutable", "add", repo, "release-*")
    assert added.returncode == 0, added.stderr
    rule_id = int(added.stdout.split()[2].rstrip(":"))
    listed = _cli(server, "immutable", "list")
    assert f"{rule_id}\t{repo}\trelease-*" in listed.stdout
    with server.client() as client:
        _push_image(client, repo, "release-1", b"x")
        config, other = _manifest("b")
        client.push_blob(repo, config)
        assert_error(client.put_manifest(repo, "release-1", other), 409, "TAG_IMMUTABLE")
    removed = _cli(server, "immutable", "remove", str(rule_id))
    assert removed.returncode == 0, removed.stderr


# -- quotas and usage -------------------------------------------------------------------------


def test_shared_blob_counts_once_and_an_overflowing_push_leaves_nothing(
    server: RegistryServer,
) -> None:
    ns = _namespace()
    shared, second, third = os.urandom(1000), os.urandom(1500), os.urandom(1000)
    _with_service(server, lambda s: s.set_quota("namespace", ns, 3000))
    with server.client() as client:
        client.push_blob(f"{ns}/a", shared)
        client.push_blob(f"{ns}/b", shared)
        assert _usage(server, ns) == {"namespace": 1000, f"{ns}/a": 1000, f"{ns}/b": 1000}
        client.push_blob(f"{ns}/b", second)
        assert _usage(server, ns)["namespace"] == 2500
        # A mount of a blob the namespace holds costs nothing.
        mounted = client.http.post(
            f"/v2/{ns}/c/blobs/uploads/",
            params={"mount": digest_of(shared), "from": f"{ns}/a"},
        )
        assert mounted.status_code == 201, mounted.text

        # Chunked: the refusal comes at the final PUT, with the quota in the message.
        location = client.start_upload(f"{ns}/a").headers["Location"]
        patched = client.patch_chunk(location, third[:600], 0)
        assert patched.status_code == 202
        location = patched.headers["Location"]
        refused = client.http.put(
            client.resolve(location, digest=digest_of(third)),
            content=third[600:],
            headers={"Content-Range": f"600-{len(third) - 1}"},
        )
        errors = assert_error(refused, 403, "DENIED")
        assert "quota exceeded" in errors[0]["message"]
        assert errors[0]["detail"]["limit"] == 3000
        assert errors[0]["detail"]["used"] == 2500
        # Nothing remains: no session, no upload data, no blob, no link, no usage.
        assert client.http.get(client.resolve(location)).status_code == 404
        assert not client.blob_exists(f"{ns}/a", digest_of(third))
        assert not list((server.root / "uploads").glob("*/data"))
        hex_digest = digest_of(third).split(":")[1]
        assert not (server.root / "blobs" / "sha256" / hex_digest[:2] / hex_digest).exists()
        # Monolithic: refused the same way.
        monolithic = client.http.post(
            f"/v2/{ns}/a/blobs/uploads/", params={"digest": digest_of(third)}, content=third
        )
        assert_error(monolithic, 403, "DENIED")
        # A mount from another namespace brings new bytes: refused too.
        foreign = f"{_namespace()}/src"
        client.push_blob(foreign, third)
        mount = client.http.post(
            f"/v2/{ns}/a/blobs/uploads/", params={"mount": digest_of(third), "from": foreign}
        )
        assert_error(mount, 403, "DENIED")
        assert _usage(server, ns) == {
            "namespace": 2500,
            f"{ns}/a": 1000,
            f"{ns}/b": 2500,
            f"{ns}/c": 1000,
        }
        assert _recount(server, ns) == _usage(server, ns)
        # What fits is still taken (a 500-byte blob reaches the limit exactly).
        client.push_blob(f"{ns}/a", os.urandom(500))
        assert _usage(server, ns)["namespace"] == 3000
        # A raised limit lets the refused blob in.
        _with_service(server, lambda s: s.set_quota("namespace", ns, 5000))
        client.push_blob(f"{ns}/a", third)
        assert _usage(server, ns)["namespace"] == 4000


def test_repository_quota(server: RegistryServer) -> None:
    ns = _namespace()
    done = _cli(server, "quota", "set", f"{ns}/small", "1KiB", "--repository")
    assert done.returncode == 0, done.stderr
    assert f"repository\t{ns}/small\t1024" in _cli(server, "quota", "list").stdout
    with server.client() as client:
        client.push_blob(f"{ns}/small", os.urandom(1000))
        response = client.http.post(
            f"/v2/{ns}/small/blobs/uploads/",
            params={"digest": digest_of(blob := os.urandom(100))},
            content=blob,
        )
        assert_error(response, 403, "DENIED")
        # Other repositories of the namespace are not limited.
        client.push_blob(f"{ns}/big", os.urandom(5000))
    assert _cli(server, "quota", "remove", f"{ns}/small", "--repository").returncode == 0


def test_two_pushes_racing_at_the_quota_edge(server: RegistryServer) -> None:
    for _ in range(3):
        ns = _namespace()
        _set_quota(server, ns, 1500)
        outcomes: list[int] = []
        barrier = threading.Barrier(2)

        def push(
            repo: str,
            data: bytes,
            barrier: threading.Barrier = barrier,
            outcomes: list[int] = outcomes,
        ) -> None:
            with RegistryClient(server.url) as client:
                location = client.start_upload(repo).headers["Location"]
                barrier.wait()
                response = client.http.put(
                    client.resolve(location, digest=digest_of(data)), content=data
                )
                outcomes.append(response.status_code)

        threads = [
            threading.Thread(target=push, args=(f"{ns}/r{n}", os.urandom(1000))) for n in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(outcomes) == [201, 403]
        usage = _usage(server, ns)
        assert usage["namespace"] == 1000
        assert _recount(server, ns) == usage


def test_usage_is_exact_after_pushes_mounts_and_deletes(server: RegistryServer) -> None:
    ns = _namespace()
    base, app_layer, tool_layer = os.urandom(3000), os.urandom(700), os.urandom(300)
    with server.client() as client:
        _push_image(client, f"{ns}/app", "1", base, app_layer, config=b'{"a":1}')
        mounted = client.http.post(
            f"/v2/{ns}/tool/blobs/uploads/", params={"mount": digest_of(base), "from": f"{ns}/app"}
        )
        assert mounted.status_code == 201
        tool = _push_image(client, f"{ns}/tool", "1", base, tool_layer, config=b'{"t":1}')
        expected = {
            "namespace": 3000 + 700 + 300 + 7 + 7,
            f"{ns}/app": 3000 + 700 + 7,
            f"{ns}/tool": 3000 + 300 + 7,
        }
        assert _usage(server, ns) == expected == _recount(server, ns)

        # A blob DELETE unlinks at once.
        assert client.http.delete(f"/v2/{ns}/app/blobs/{digest_of(app_layer)}").status_code == 202
        expected["namespace"] -= 700
        expected[f"{ns}/app"] -= 700
        assert _usage(server, ns) == expected == _recount(server, ns)
        # Unlinking a shared blob from one repository keeps it counted in the namespace.
        assert client.http.delete(f"/v2/{ns}/app/blobs/{digest_of(base)}").status_code == 202
        expected[f"{ns}/app"] -= 3000
        assert _usage(server, ns) == expected == _recount(server, ns)

        # A deleted manifest's blobs count until the collector removes them.
        assert client.http.delete(f"/v2/{ns}/tool/manifests/{tool}").status_code == 202
        assert _usage(server, ns) == expected
        _collect(server)
        expected = {"namespace": 7, f"{ns}/app": 7, f"{ns}/tool": 0}
        assert _usage(server, ns) == expected == _recount(server, ns)

    shown = _cli(server, "usage", "--namespace", ns, "--json")
    assert shown.returncode == 0, shown.stderr
    [space] = json.loads(shown.stdout)
    assert space["bytes"] == 7
    assert {r["repository"]: r["bytes"] for r in space["repositories"]} == {
        f"{ns}/app": 7,
        f"{ns}/tool": 0,
    }


# -- pulls ----------------------------------------------------------------------------------


def _pulls(server: RegistryServer, repo: str) -> dict[str, tuple[int, datetime]]:
    rows = _read(server, select(tag_pulls).where(tag_pulls.c.repository == repo))
    return {row.tag: (row.pulls, row.last_pulled_at) for row in rows}


def test_pulls_are_counted_per_tag_and_flushed_every_second(server: RegistryServer) -> None:
    repo = f"{_namespace()}/pulled"
    with server.client() as client:
        digest = _push_image(client, repo, "a", b"pulls")
        client.push_manifest(repo, "b", client.get_manifest(repo, digest).content)
        before = datetime.now(UTC)
        for _ in range(3):
            assert client.get_manifest(repo, "a").status_code == 200
        assert client.http.head(f"/v2/{repo}/manifests/b").status_code == 200
        # By digest: not a pull of any tag.
        assert client.get_manifest(repo, digest).status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        counts = _pulls(server, repo)
        if counts.get("a", (0,))[0] == 3 and "b" in counts:
            break
        time.sleep(0.2)
    assert {tag: pulls for tag, (pulls, _) in counts.items()} == {"a": 3, "b": 1}
    assert all(
        before - timedelta(seconds=1) <= at <= datetime.now(UTC) for _, at in counts.values()
    )
    [space] = _with_service(server, lambda s: s.usage(repository=repo, with_tags=True))
    [tagged] = space.repositories
    assert {t.tag: t.pulls for t in tagged.tags} == {"a": 3, "b": 1}


def test_pull_counts_are_written_at_shutdown(registry_factory: ServerFactory) -> None:
    server = registry_factory({"http": {"workers": 1}})
    repo = f"{_namespace()}/once"
    with server.client() as client:
        _push_image(client, repo, "t", b"shutdown")
        assert client.get_manifest(repo, "t").status_code == 200
    server.stop()  # at once: before a periodic flush is likely
    assert _pulls(server, repo)["t"][0] == 1


# -- retention --------------------------------------------------------------------------------


def _tags(client: RegistryClient, repo: str) -> list[str]:
    response = client.http.get(f"/v2/{repo}/tags/list")
    assert response.status_code == 200, response.text
    return sorted(response.json().get("tags") or [])


def _age(server: RegistryServer, repo: str, tag: str, days: float) -> None:
    """Backdate a tag's push (the clock cannot be moved for a real server)."""
    repository_id = select(repositories.c.id).where(repositories.c.name == repo).scalar_subquery()
    _write(
        server,
        update(tags)
        .where(tags.c.repository_id == repository_id, tags.c.name == tag)
        .values(updated_at=datetime.now(UTC) - timedelta(days=days)),
    )


def test_retention_keep_last_with_patterns_dry_run_first(server: RegistryServer) -> None:
    ns = _namespace()
    repo = f"{ns}/svc"
    names = ["1.0", "1.1", "1.2", "dev-a", "dev-b", "dev-c", "stable", "keep-me"]
    with server.client() as client:
        for index, name in enumerate(names):
            _push_image(client, repo, name, f"layer {name}".encode())
            _age(server, repo, name, days=len(names) - index)  # pushed in list order
        _with_service(server, lambda s: s.add_immutable_rule(repo, "1.0"))
        added = _cli(server, "retention", "add", f"{ns}/*", "--tags", "1.*", "--keep-last", "1")
        assert added.returncode == 0, added.stderr
        _with_service(
            server,
            lambda s: s.add_retention_policy(repo, "dev-*", keep_last=2, keep_pattern="dev-a"),
        )
        # Two policies govern 1.x and dev-*; stable and keep-me are left alone.
        dry = _cli(server, "retention", "run", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert f"would remove {repo}:1.1 " in dry.stdout
        # 1.0 is immutable, dev-a always kept, dev-b dev-c the last two, 1.2 the newest.
        assert dry.stdout.count(f"{repo}:") == 1
        assert _tags(client, repo) == sorted(names)

        done = _cli(server, "retention", "run")
        assert done.returncode == 0, done.stderr
        assert f"removed {repo}:1.1 " in done.stdout
        assert _tags(client, repo) == sorted(set(names) - {"1.1"})
        recorded = _read(
            server,
            select(audit_events.c.action, audit_events.c.tag).where(
                audit_events.c.repository == repo
            ),
        )
        assert [(r.action, r.tag) for r in recorded] == [("retention.delete", "1.1")]
        # The manifest it untagged is a collection candidate; removing it frees its layer.
        _collect(server, delete_untagged=True)
        assert not client.blob_exists(repo, digest_of(b"layer 1.1"))
        # Nothing more to remove.
        again = _with_service(server, lambda s: s.run_retention())
        assert [r for r in again.removed if r.repository == repo] == []
    for policy in _with_service(server, lambda s: s.list_retention_policies()):
        if policy.repository_pattern in (f"{ns}/*", repo):
            _remove_policy(server, policy.id)


def test_retention_keeps_tags_pulled_within_the_period(server: RegistryServer) -> None:
    ns = _namespace()
    repo = f"{ns}/web"
    with server.client() as client:
        for name in ("old", "pulled", "fresh"):
            _push_image(client, repo, name, f"layer {name}".encode())
        _age(server, repo, "old", days=10)
        _age(server, repo, "pulled", days=10)
        assert client.get_manifest(repo, "pulled").status_code == 200
        deadline = time.monotonic() + 10
        while "pulled" not in _pulls(server, repo) and time.monotonic() < deadline:
            time.sleep(0.2)
        policy = _with_service(
            server, lambda s: s.add_retention_policy(f"{ns}/*", keep_within=86400.0)
        )
        try:
            report = _with_service(server, lambda s: s.run_retention(dry_run=True))
            assert [(r.repository, r.tag) for r in report.removed if r.repository == repo] == [
                (repo, "old")
            ]
            assert _tags(client, repo) == ["fresh", "old", "pulled"]
            report = _with_service(server, lambda s: s.run_retention())
            assert [r.tag for r in report.removed if r.repository == repo] == ["old"]
            assert _tags(client, repo) == ["fresh", "pulled"]
        finally:
            _with_service(server, lambda s: s.remove_retention_policy(policy.id))


def test_retention_runs_on_a_schedule(registry_factory: ServerFactory) -> None:
    server = registry_factory({"retention": {"interval": "1s"}, "http": {"workers": 1}})
    repo = f"{_namespace()}/sched"
    with server.client() as client:
        for name in ("a", "b", "c"):
            _push_image(client, repo, name, f"layer {name}".encode())
            _age(server, repo, name, days=3 - ord(name) + ord("a"))
        _with_service(server, lambda s: s.add_retention_policy(repo, keep_last=1))
        deadline = time.monotonic() + 15
        while _tags(client, repo) != ["c"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _tags(client, repo) == ["c"]


def test_bad_lifecycle_input_is_refused_clearly(server: RegistryServer) -> None:
    bad = _cli(server, "immutable", "add", "x/*", "v[0-9]")
    assert bad.returncode == 1
    assert "invalid tag pattern" in bad.stderr
    keep_nothing = _cli(server, "retention", "add", "x/*")
    assert keep_nothing.returncode == 1
    assert "keep-last or keep-within" in keep_nothing.stderr
    bad_size = _cli(server, "quota", "set", "x", "lots")
    assert bad_size.returncode == 2
    assert "not a size" in bad_size.stderr
    slash = _cli(server, "quota", "set", "x/y", "1MB")
    assert slash.returncode == 1
    assert "namespace" in slash.stderr
    assert _read(server, select(func.count()).select_from(tags))  # the database is still fine


def test_usage_cli_lists_namespaces_and_tags(server: RegistryServer) -> None:
    ns = _namespace()
    with server.client() as client:
        _push_image(client, f"{ns}/one", "v", b"0123456789", config=b"{}")
    shown = _cli(server, "usage", "--repository", f"{ns}/one", "--tags")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"namespace {ns}\t12\t2 blob(s)")
    assert lines[1].startswith(f"  {ns}/one\t12\t2 blob(s)")
    assert lines[2].startswith("    v\tsha256:")
