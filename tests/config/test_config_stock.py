"""Configs written for Distribution load unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.config import Config, load_config

ENV = {"HOME": "/home/someone"}

# The config the registry:2 image ships as /etc/docker/registry/config.yml.
STOCK = """\
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"""

# Debian's docker-registry package config, with htpasswd auth added.
DEBIAN_HTPASSWD = """\
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/docker-registry
  delete:
    enabled: true
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: basic-realm
    path: /etc/docker/registry
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"""

# Distribution's "list of configuration options", reduced to one storage driver and one auth
# provider (it lists several of each, which no registry accepts together).
EVERY_OPTION = """\
version: 0.1
log:
  accesslog:
    disabled: true
  level: debug
  formatter: text
  fields:
    service: registry
    environment: staging
  hooks:
    - type: mail
      disabled: true
      levels:
        - panic
      options:
        smtp:
          addr: mail.example.com:25
          username: mailuser
          password: password
          insecure: true
        from: sender@example.com
        to:
          - errors@example.com
  reportcaller: false
loglevel: debug # deprecated: use "log"
storage:
  s3:
    accesskey: awsaccesskey
    secretkey: awssecretkey
    region: us-west-1
    regionendpoint: http://myobjects.local
    forcepathstyle: true
    accelerate: false
    bucket: bucketname
    encrypt: true
    keyid: mykeyid
    secure: true
    v4auth: true
    chunksize: 5242880
    multipartcopychunksize: 33554432
    multipartcopymaxconcurrency: 100
    multipartcopythresholdsize: 33554432
    rootdirectory: /s3/object/name/prefix
    usedualstack: false
    loglevel: debug
    skipverify: false
    storageclass: STANDARD
    objectacl: private
    useragent: dockyard-test
  tag:
    concurrencylimit: 8
  delete:
    enabled: false
  redirect:
    disable: false
  cache:
    blobdescriptor: redis
    blobdescriptorsize: 10000
  maintenance:
    uploadpurging:
      enabled: true
      age: 168h
      interval: 24h
      dryrun: false
    readonly:
      enabled: false
auth:
  token:
    autoredirect: true
    realm: token-realm
    service: token-service
    issuer: registry-token-issuer
    rootcertbundle: /root/certs/bundle
    jwks: /path/to/jwks
    signingalgorithms:
        - EdDSA
        - HS256
middleware:
  registry:
    - name: ARegistryMiddleware
      options:
        foo: bar
  repository:
    - name: ARepositoryMiddleware
      options:
        foo: bar
  storage:
    - name: cloudfront
      options:
        baseurl: https://my.cloudfronted.domain.com/
        privatekey: /path/to/pem
        keypairid: cloudfrontkeypairid
        duration: 3000s
        ipfilteredby: awsregion
        awsregion: us-east-1, use-east-2
        updatefrequency: 12h
        iprangesurl: https://ip-ranges.amazonaws.com/ip-ranges.json
http:
  addr: localhost:5000
  net: tcp
  prefix: /my/nested/registry/
  host: https://myregistryaddress.org:5000
  secret: asecretforlocaldevelopment
  relativeurls: false
  draintimeout: 60s
  tls:
    certificate: /path/to/x509/public
    key: /path/to/x509/private
    clientcas:
      - /path/to/ca.pem
      - /path/to/another/ca.pem
    clientauth: require-and-verify-client-cert
    minimumtls: tls1.2
    ciphersuites:
      - TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
      - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
    letsencrypt:
      cachefile: /path/to/cache-file
      email: emailused@letsencrypt.com
      hosts: [myregistryaddress.org]
      directoryurl: https://acme-v02.api.letsencrypt.org/directory
  debug:
    addr: localhost:5001
    prometheus:
      enabled: true
      path: /metrics
  headers:
    X-Content-Type-Options: [nosniff]
  http2:
    disabled: false
  h2c:
    enabled: false
notifications:
  events:
    includereferences: true
  endpoints:
    - name: alistener
      disabled: false
      url: https://my.listener.com/event
      headers:
        Authorization: [Bearer token]
      timeout: 1s
      threshold: 10
      backoff: 1s
      ignoredmediatypes:
        - application/octet-stream
      ignore:
        mediatypes:
           - application/octet-stream
        actions:
           - pull
redis:
  tls:
    certificate: /path/to/cert.crt
    key: /path/to/key.pem
    clientcas:
      - /path/to/ca.pem
  addrs: [localhost:6379]
  password: asecret
  db: 0
  dialtimeout: 10ms
  readtimeout: 10ms
  writetimeout: 10ms
  maxidleconns: 16
  poolsize: 64
  connmaxidletime: 300s
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
  file:
    - file: /path/to/checked/file
      interval: 10s
  http:
    - uri: http://server.to.check/must/return/200
      headers:
        Authorization: [Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==]
      statuscode: 200
      timeout: 3s
      interval: 10s
      threshold: 3
  tcp:
    - addr: redis-server.domain.com:6379
      timeout: 3s
      interval: 10s
      threshold: 3
proxy:
  remoteurl: https://registry-1.docker.io
  username: [username]
  password: [password]
  exec:
    command: docker-credential-helper
    lifetime: 1h
  ttl: 168h
  remotenamespace: namespace
validation:
  manifests:
    urls:
      allow:
        - ^https?://([^/]+\\.)*example\\.com/
      deny:
        - ^https?://www\\.example\\.com/
    indexes:
      platforms: List
      platformlist:
      - architecture: amd64
        os: linux
compatibility:
  schema1:
    enabled: false
catalog:
  maxentries: 1000
"""


def _load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "config.yml"
    path.write_text(text)
    return load_config(str(path), ENV)


def test_registry_image_stock_config(tmp_path: Path) -> None:
    config = _load(tmp_path, STOCK)
    assert config.version == "0.1"
    assert config.log.fields == {"service": "registry"}
    assert config.storage.driver_name == "filesystem"
    assert config.storage.filesystem is not None
    assert config.storage.filesystem.rootdirectory == "/var/lib/registry"
    assert config.storage.cache.blobdescriptor == "inmemory"
    assert config.http.addr == ":5000"
    assert config.http.headers == {"X-Content-Type-Options": ["nosniff"]}
    assert config.health.storagedriver.enabled is True
    assert config.health.storagedriver.interval == 10.0
    assert config.health.storagedriver.threshold == 3
    assert config.database_url == "sqlite:////var/lib/registry/dockyard.db"
    assert config.auth == {}


def test_htpasswd_config(tmp_path: Path) -> None:
    config = _load(tmp_path, DEBIAN_HTPASSWD)
    assert config.auth == {"htpasswd": {"realm": "basic-realm", "path": "/etc/docker/registry"}}
    assert config.storage.delete.enabled is True
    assert config.data_directory == "/var/lib/docker-registry"


MACHINE_CONFIG = Path("/etc/docker/registry/config.yml")


@pytest.mark.skipif(not MACHINE_CONFIG.is_file(), reason="no Distribution config installed")
def test_this_machines_distribution_config() -> None:
    config = load_config(str(MACHINE_CONFIG), ENV)
    assert config.storage.driver_name == "filesystem"
    assert config.http.addr == ":5000"


def test_every_documented_option(tmp_path: Path) -> None:
    config = _load(tmp_path, EVERY_OPTION)
    assert config.log.level == "debug"
    assert config.log.accesslog.disabled is True
    assert config.log.hooks[0]["type"] == "mail"
    s3 = config.storage.s3
    assert s3 is not None
    assert (s3.bucket, s3.region, s3.regionendpoint) == (
        "bucketname",
        "us-west-1",
        "http://myobjects.local",
    )
    assert (s3.forcepathstyle, s3.encrypt, s3.chunksize, s3.loglevel) == (
        True,
        True,
        5242880,
        "debug",
    )
    assert config.storage.tag.concurrencylimit == 8
    assert config.storage.cache.blobdescriptor == "redis"
    assert config.auth["token"]["issuer"] == "registry-token-issuer"
    http = config.http
    assert http.tcp_address == ("localhost", 5000)
    assert http.prefix == "/my/nested/registry"
    assert http.host == "https://myregistryaddress.org:5000"
    assert http.secret == "asecretforlocaldevelopment"
    assert http.draintimeout == 60.0
    assert http.tls is not None
    assert http.tls.clientcas == ["/path/to/ca.pem", "/path/to/another/ca.pem"]
    assert http.tls.letsencrypt is not None
    assert http.tls.letsencrypt.hosts == ["myregistryaddress.org"]
    assert http.debug is not None
    assert http.debug.prometheus.enabled is True
    endpoint = config.notifications.endpoints[0]
    assert endpoint.name == "alistener"
    assert endpoint.headers == {"Authorization": ["Bearer token"]}
    assert endpoint.ignores("pull", None)
    assert config.notifications.events.includereferences is True
    assert config.redis["addrs"] == ["localhost:6379"]
    assert config.health.http[0].timeout == 3.0
    assert config.health.http[0].headers == {
        "Authorization": ["Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="]
    }
    assert config.health.tcp[0].addr == "redis-server.domain.com:6379"
    assert config.proxy["remoteurl"] == "https://registry-1.docker.io"
    assert config.validation["manifests"]["urls"]["allow"] == [
        "^https?://([^/]+\\.)*example\\.com/"
    ]
    assert config.middleware["storage"][0]["name"] == "cloudfront"


@pytest.mark.parametrize(
    ("text", "driver"),
    [
        ("storage: inmemory\n", "inmemory"),
        ("storage:\n  inmemory:\n", "inmemory"),
        ("storage:\n  inmemory:\n  delete:\n    enabled: true\n", "inmemory"),
        ("storage:\n  delete:\n    enabled: true\n", "filesystem"),
        ("storage:\n", "filesystem"),
    ],
)
def test_driver_forms(tmp_path: Path, text: str, driver: str) -> None:
    assert _load(tmp_path, text).storage.driver_name == driver


def test_deprecated_forms(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        "loglevel: warn\nstorage:\n  cache:\n    layerinfo: inmemory\n  s3:\n"
        "    bucket: b\n    region: r\n    loglevel: off\n    storageclass: reduced_redundancy\n",
    )
    assert config.log.level == "warn"  # log.level unset: the deprecated key fills it
    assert config.storage.cache.blobdescriptor == "inmemory"
    assert config.storage.s3 is not None
    assert config.storage.s3.loglevel == "off"  # YAML reads `off` as false
    assert config.storage.s3.storageclass == "REDUCED_REDUNDANCY"


def test_log_level_beats_deprecated_loglevel(tmp_path: Path) -> None:
    config = _load(tmp_path, "loglevel: debug\nlog:\n  level: ERROR\n")
    assert config.log.level == "error"


def test_scalars_become_text(tmp_path: Path) -> None:
    config = _load(
        tmp_path, "http:\n  secret: 12345\n  host: https://r.example:5000\nauth: silly\n"
    )
    assert config.http.secret == "12345"
    assert config.auth == {"silly": {}}


def test_single_header_value_is_a_list(tmp_path: Path) -> None:
    config = _load(tmp_path, "http:\n  headers:\n    X-Frame-Options: DENY\n")
    assert config.http.headers == {"X-Frame-Options": ["DENY"]}


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        (":5000", ("", 5000)),
        ("0.0.0.0:5000", ("0.0.0.0", 5000)),
        ("127.0.0.1:5001", ("127.0.0.1", 5001)),
        ("[::1]:5000", ("::1", 5000)),
        ("[::]:443", ("::", 443)),
        ("localhost:5000", ("localhost", 5000)),
        ("registry.example.com:65535", ("registry.example.com", 65535)),
    ],
)
def test_address_forms(tmp_path: Path, addr: str, expected: tuple[str, int]) -> None:
    config = _load(tmp_path, f"http:\n  addr: '{addr}'\n")
    assert config.http.addr == addr
    assert config.http.tcp_address == expected


def test_unix_socket(tmp_path: Path) -> None:
    config = _load(tmp_path, "http:\n  net: unix\n  addr: /run/dockyard.sock\n")
    assert (config.http.net, config.http.addr) == ("unix", "/run/dockyard.sock")


def test_database_url(tmp_path: Path) -> None:
    config = _load(tmp_path, "database:\n  url: postgresql+asyncpg://db/dockyard\n")
    assert config.database_url == "postgresql+asyncpg://db/dockyard"
