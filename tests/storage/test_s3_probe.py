"""Asking the store whether a ``storage.s3`` section reaches its bucket: each refusal names
the key to fix, in ``dockyard check-config`` and at ``dockyard serve``'s start.

moto checks credentials only once told to (``INITIAL_NO_AUTH_ACTION_COUNT``): its first
requests make an IAM user allowed all of S3, its key, a user allowed nothing and a bucket;
every later request must be signed by a key moto issued.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError

from dockyard.config.storage import S3Config
from dockyard.storage.s3.bucket import S3Unavailable
from dockyard.storage.s3.probe import probe_bucket

from .s3server import REGION, S3Server, s3_server

# Requests moto serves before it checks credentials: enough for the set-up below (and the
# start-up check's own), the rest used up by requests with an unknown key.
_FREE_REQUESTS = 12
BUCKET = "probed"


@dataclass(frozen=True)
class Store:
    server: S3Server
    key: str
    secret: str
    idle_key: str
    idle_secret: str

    def section(self, **keys: Any) -> dict[str, Any]:
        return {
            "bucket": BUCKET,
            "regionendpoint": self.server.endpoint,
            "forcepathstyle": True,
            "region": REGION,
            "accesskey": self.key,
            "secretkey": self.secret,
            **keys,
        }

    def config(self, **keys: Any) -> S3Config:
        return S3Config.model_validate(self.section(**keys))


def _client(service: str, endpoint: str, key: str, secret: str) -> Any:
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    with s3_server({"INITIAL_NO_AUTH_ACTION_COUNT": str(_FREE_REQUESTS)}) as server:
        iam = _client("iam", server.endpoint, "setup", "setup")
        iam.create_user(UserName="registry")
        iam.put_user_policy(
            UserName="registry",
            PolicyName="all-of-s3",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
                }
            ),
        )
        key = iam.create_access_key(UserName="registry")["AccessKey"]
        iam.create_user(UserName="idle")
        idle = iam.create_access_key(UserName="idle")["AccessKey"]
        _client("s3", server.endpoint, "setup", "setup").create_bucket(Bucket=BUCKET)
        # Use up the free requests: from the first refusal on, every request is checked.
        stranger = _client("s3", server.endpoint, "AKIASTRANGER", "nope")
        refused = ""
        for _ in range(_FREE_REQUESTS + 1):
            try:
                stranger.list_buckets()
            except ClientError as error:
                refused = error.response["Error"]["Code"]
                break
        assert refused == "InvalidAccessKeyId", "moto never started checking credentials"
        yield Store(
            server,
            key["AccessKeyId"],
            key["SecretAccessKey"],
            idle["AccessKeyId"],
            idle["SecretAccessKey"],
        )


def test_the_right_section_passes(store: Store) -> None:
    assert probe_bucket(store.config()) is None
    assert probe_bucket(store.config(rootdirectory="/some/root")) is None


@pytest.mark.parametrize(
    ("keys", "path", "says"),
    [
        ({"bucket": "no-such-bucket"}, "storage.s3.bucket", "no bucket 'no-such-bucket'"),
        ({"accesskey": "AKIAUNKNOWN"}, "storage.s3.accesskey", "no such access key"),
        ({"secretkey": "wrong"}, "storage.s3.secretkey", "not the secret key"),
    ],
)
def test_each_refusal_names_its_key(
    store: Store, keys: dict[str, str], path: str, says: str
) -> None:
    problem = probe_bucket(store.config(**keys))
    assert problem is not None
    assert problem.path == path
    assert says in problem.message


def test_credentials_not_allowed_to_list(store: Store) -> None:
    problem = probe_bucket(store.config(accesskey=store.idle_key, secretkey=store.idle_secret))
    assert problem is not None
    assert problem.path == "storage.s3.accesskey"
    assert f"may not list bucket '{BUCKET}'" in problem.message


def test_a_store_out_of_reach_names_no_key(store: Store) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        endpoint = f"http://127.0.0.1:{probe.getsockname()[1]}"
        with pytest.raises(S3Unavailable):
            probe_bucket(store.config(regionendpoint=endpoint))


def _config_file(tmp_path: Path, store: Store, **keys: Any) -> Path:
    path = tmp_path / "config.yml"
    config = {
        "version": 0.1,
        "storage": {"s3": store.section(**keys)},
        "database": {"url": f"sqlite:///{tmp_path / 'meta.db'}"},
        "http": {"addr": "127.0.0.1:5999"},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def _dockyard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockyard", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_config_names_the_wrong_key(store: Store, tmp_path: Path) -> None:
    assert _dockyard("check-config", str(_config_file(tmp_path, store))).stdout == "ok\n"
    result = _dockyard("check-config", str(_config_file(tmp_path, store, secretkey="wrong")))
    assert result.returncode == 2
    assert result.stderr.startswith("storage.s3.secretkey: ")
    # --offline reads the file only.
    offline = _dockyard("check-config", "--offline", str(_config_file(tmp_path, store, bucket="x")))
    assert (offline.returncode, offline.stdout) == (0, "ok\n")


def test_serve_refuses_to_start_on_a_missing_bucket(store: Store, tmp_path: Path) -> None:
    result = _dockyard("serve", str(_config_file(tmp_path, store, bucket="missing-bucket")))
    assert result.returncode == 1
    assert "storage.s3.bucket: no bucket 'missing-bucket'" in result.stderr
