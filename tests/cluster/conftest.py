"""A Dockyard cluster for the tests of this package: two replicas (``dockyard serve``, separate
processes on their own ports) sharing one PostgreSQL database, one S3 bucket (moto's server), one
Redis and one ``http.secret``, behind HAProxy balancing round robin.

The schema is brought to head by ``dockyard migrate`` before any replica starts, as the
deployment documentation prescribes.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from e2e.conftest import DISTRIBUTION, RegistryServer, merge
from e2e.registry import RegistryClient
from storage.s3server import REGION, S3Server, s3_server

from .balancer import Balancer, haproxy
from .services import POSTGRES_SERVER, missing_packages, postgres_database, redis_server

REPLICAS = ("r1", "r2")


@dataclass(frozen=True)
class Cluster:
    balancer: Balancer
    replicas: dict[str, RegistryServer]
    """By the name HAProxy knows each by."""
    bucket: str

    @property
    def url(self) -> str:
        return self.balancer.url

    def client(self) -> RegistryClient:
        """A client of the balancer (its connection kept alive, as real clients do)."""
        return RegistryClient(self.url)


def shared_config(database_url: str, s3: S3Server, bucket: str, redis_addr: str) -> dict[str, Any]:
    return {
        "version": 0.1,
        "storage": {
            "s3": s3.section(bucket, region=REGION, rootdirectory="/registry"),
            "delete": {"enabled": True},
        },
        "database": {"url": database_url},
        "redis": {"addr": redis_addr},
        "http": {"secret": secrets.token_hex(32), "workers": 1},
    }


def _migrate(config_path: Path) -> None:
    """``dockyard migrate``, then ``--check``: the init step of a deployment."""
    for flags in ([], ["--check"]):
        done = subprocess.run(
            [sys.executable, "-m", "dockyard", "migrate", str(config_path), *flags],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"dockyard migrate {flags}: {done.stderr.decode()}"


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, unused_tcp_port_factory: Callable[[], int]
) -> Iterator[Cluster]:
    if DISTRIBUTION:
        pytest.skip("the cluster runs Dockyard replicas; DOCKYARD_E2E_IMPL is for tests/e2e")
    missing = missing_packages()
    if missing:
        where = (
            f"; PostgreSQL must be running at {make_url(POSTGRES_SERVER)!s} "
            "(DOCKYARD_TEST_POSTGRES)"
            if "postgresql" in missing
            else ""
        )
        pytest.skip(
            f"the cluster test needs {', '.join(missing)} "
            f"(apt-get install {' '.join(missing)}{where})"
        )
    workdir = tmp_path_factory.mktemp("cluster")
    bucket = f"dockyard-{secrets.token_hex(6)}"
    with (
        s3_server() as s3,
        postgres_database() as database_url,
        redis_server(unused_tcp_port_factory(), workdir / "redis") as redis_addr,
    ):
        s3.client().create_bucket(Bucket=bucket)
        config = shared_config(database_url, s3, bucket, redis_addr)
        migrate_config = workdir / "migrate.yml"
        migrate_config.write_text(yaml.safe_dump(config))
        _migrate(migrate_config)

        replicas: dict[str, RegistryServer] = {}
        try:
            for name in REPLICAS:
                port = unused_tcp_port_factory()
                replica_dir = workdir / name
                replica_dir.mkdir()
                full = merge(config, {"http": {"addr": f"127.0.0.1:{port}"}})
                replicas[name] = RegistryServer(replica_dir, full, {})
                replicas[name].start()
            backends = [
                (name, replica.url.split("://", 1)[1]) for name, replica in replicas.items()
            ]
            with haproxy(
                unused_tcp_port_factory(),
                unused_tcp_port_factory(),
                backends,
                workdir / "haproxy",
            ) as balancer:
                yield Cluster(balancer, replicas, bucket)
        finally:
            for replica in replicas.values():
                replica.stop()


@pytest.fixture
def repo(request: pytest.FixtureRequest) -> str:
    """A repository name of this test's own."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:60].strip("-")
    return f"cluster/{name}-{secrets.token_hex(3)}"
