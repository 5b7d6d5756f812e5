"""``http``: where and how the registry listens."""

from __future__ import annotations

import ipaddress
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator, model_validator

from dockyard.config.durations import Duration
from dockyard.config.fields import Headers, Model, Text, TextList, parse_tcp_address

__all__ = [
    "DebugConfig",
    "H2cConfig",
    "Http2Config",
    "HttpConfig",
    "LetsEncryptConfig",
    "PrometheusConfig",
    "TlsConfig",
]


class LetsEncryptConfig(Model):
    cachefile: Text
    email: Text
    hosts: TextList = []
    directoryurl: Text | None = None


class TlsConfig(Model):
    certificate: Text | None = None
    key: Text | None = None
    clientcas: TextList = []
    clientauth: Literal[
        "request-client-cert",
        "require-any-client-cert",
        "verify-client-cert-if-given",
        "require-and-verify-client-cert",
    ] = "require-and-verify-client-cert"
    minimumtls: Literal["tls1.0", "tls1.1", "tls1.2", "tls1.3"] = "tls1.2"
    ciphersuites: TextList = []
    letsencrypt: LetsEncryptConfig | None = None

    @model_validator(mode="after")
    def _certificate_and_key(self) -> TlsConfig:
        if (self.certificate is None) != (self.key is None):
            raise ValueError("certificate and key go together: set both or neither")
        if self.certificate is None and self.letsencrypt is None:
            raise ValueError("certificate and key are required")
        return self


class PrometheusConfig(Model):
    enabled: bool = False
    path: Text = "/metrics"


class DebugConfig(Model):
    addr: Text
    prometheus: PrometheusConfig = PrometheusConfig()

    @field_validator("addr")
    @classmethod
    def _tcp_address(cls, addr: str) -> str:
        parse_tcp_address(addr)
        return addr


class Http2Config(Model):
    disabled: bool = False


class H2cConfig(Model):
    enabled: bool = False


class HttpConfig(Model):
    net: Literal["tcp", "unix"] = "tcp"
    addr: Text = ":5000"
    """``HOST:PORT`` for ``tcp`` (empty host: every interface), a socket path for ``unix``."""
    host: Text | None = None
    """The externally reachable URL, for generated URLs; else derived from each request."""
    prefix: Text = ""
    """Path before ``/v2/``: ``""`` or ``/some/path`` (normalized without a trailing slash)."""
    secret: Text | None = None
    relativeurls: bool = False
    draintimeout: Duration = 0.0
    """Seconds to wait for in-flight requests at shutdown; 0 waits for all of them."""
    tls: TlsConfig | None = None
    headers: Headers = {"X-Content-Type-Options": ["nosniff"]}
    """Added to every response; the default is what the ``registry:2`` image ships."""
    debug: DebugConfig | None = None
    http2: Http2Config = Http2Config()
    h2c: H2cConfig = H2cConfig()
    workers: int | None = Field(None, ge=1)
    """Dockyard's own: worker processes; default one per core."""
    trustedproxies: TextList = []
    """Dockyard's own: addresses or CIDR networks of the reverse proxies whose
    ``Forwarded``/``X-Forwarded-*`` headers are believed; from anyone else they are ignored."""

    @field_validator("trustedproxies", mode="before")
    @classmethod
    def _proxy_list(cls, value: Any) -> Any:
        # One environment variable may list several: "10.0.0.0/8, 192.168.1.2".
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trustedproxies")
    @classmethod
    def _networks(cls, proxies: list[str]) -> list[str]:
        for proxy in proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    f"invalid address or network {proxy!r} (expected e.g. 10.0.0.0/8)"
                ) from None
        return proxies

    @field_validator("net", mode="before")
    @classmethod
    def _default_net(cls, net: Any) -> Any:
        return "tcp" if net in (None, "") else net

    @field_validator("addr")
    @classmethod
    def _address(cls, addr: str, info: ValidationInfo) -> str:
        net = info.data.get("net")
        if net == "tcp":
            parse_tcp_address(addr)
        elif net == "unix" and not addr:
            raise ValueError("a unix socket path is required")
        return addr

    @field_validator("host")
    @classmethod
    def _absolute_url(cls, host: str | None) -> str | None:
        if host:
            parts = urlsplit(host)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(
                    f"invalid URL {host!r} (expected e.g. https://registry.example.com)"
                )
        return host or None

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, prefix: str) -> str:
        if prefix and not prefix.startswith("/"):
            raise ValueError(f"invalid prefix {prefix!r}: must start with /")
        return prefix.rstrip("/")

    @property
    def tcp_address(self) -> tuple[str, int]:
        """``(host, port)`` of ``addr`` when ``net`` is ``tcp``; the host is ``""`` for all
        interfaces."""
        return parse_tcp_address(self.addr)
