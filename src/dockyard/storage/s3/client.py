"""An S3 client (botocore's, which boto3 wraps) built from Distribution's ``storage.s3`` keys."""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any, cast

import botocore.session
from botocore.config import Config as BotoConfig
from botocore.loaders import Loader

from dockyard.config.storage import S3Config

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

__all__ = ["ATTEMPTS", "DEFAULT_REGION", "endpoint_url", "make_client"]

DEFAULT_REGION = "us-east-1"
"""What S3-compatible stores expect when only ``regionendpoint`` is configured."""

ATTEMPTS = 3
"""Tries of each request, as the AWS SDKs' standard retry mode makes by default. With
``readtimeout`` it bounds how long a silent store holds a request."""


def endpoint_url(regionendpoint: str | None, secure: bool) -> str | None:
    """``regionendpoint`` as a URL; one given without a scheme gets ``https`` when ``secure``."""
    if not regionendpoint:
        return None
    if "://" in regionendpoint:
        return regionendpoint
    return f"{'https' if secure else 'http'}://{regionendpoint}"


@functools.cache
def _data_files() -> Loader:
    """botocore's reader of its data files (the S3 API's model, its endpoint rules...), one
    per process, so that they are parsed once (about 13 MiB) rather than once per client.
    ``dockyard serve`` makes a client before Granian forks (its start-up probe): the workers
    then share the parsed files with the parent instead of each parsing its own."""
    loader: Loader = botocore.session.get_session().get_component("data_loader")
    return loader


def _session() -> botocore.session.Session:
    session = botocore.session.get_session()
    session.register_component("data_loader", _data_files())
    return session


def make_client(
    config: S3Config,
    connections: int = 64,
    attempts: int = ATTEMPTS,
    at_most: float | None = None,
) -> S3Client:
    """A client for ``config``, making up to ``attempts`` tries of each request, each allowed
    ``dialtimeout`` to connect and ``readtimeout`` between reads (or ``at_most`` seconds, if
    shorter). Without ``accesskey`` and ``secretkey`` credentials come from boto3's usual
    chain (environment, shared files, instance or task roles)."""
    credentials: dict[str, Any] = {}
    if config.accesskey and config.secretkey:
        credentials = {
            "aws_access_key_id": config.accesskey,
            "aws_secret_access_key": config.secretkey,
            "aws_session_token": config.sessiontoken,
        }
    settings = BotoConfig(
        region_name=config.region or DEFAULT_REGION,
        signature_version="s3v4" if config.v4auth else "s3",
        s3={
            "addressing_style": "path" if config.forcepathstyle else "auto",
            "use_accelerate_endpoint": config.accelerate,
        },
        use_dualstack_endpoint=config.usedualstack,
        use_fips_endpoint=config.usefipsendpoint,
        user_agent=config.useragent,
        max_pool_connections=connections,
        retries={"mode": "standard", "total_max_attempts": attempts},
        connect_timeout=min(config.dialtimeout, at_most or math.inf),
        read_timeout=min(config.readtimeout, at_most or math.inf),
        # Checksums only where the API demands them: many S3-compatible stores refuse the
        # trailing checksums boto3 sends by default, and the registry verifies digests itself.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    client = _session().create_client(
        "s3",
        endpoint_url=endpoint_url(config.regionendpoint, config.secure),
        use_ssl=config.secure,
        verify=False if config.skipverify else None,
        config=settings,
        **credentials,
    )
    return cast("S3Client", client)
