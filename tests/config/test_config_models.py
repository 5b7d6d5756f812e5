"""The models themselves: frozen, typed, usable without a file."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dockyard.config import (
    Config,
    HttpConfig,
    StorageConfig,
    default_data_directory,
    load_config,
    parse_tcp_address,
)


@pytest.fixture
def config() -> Config:
    return load_config(None, {"HOME": "/home/someone"})


@pytest.mark.parametrize(
    ("owner", "attribute", "value"),
    [
        ("config", "version", "0.2"),
        ("http", "addr", ":6000"),
        ("storage", "delete", None),
        ("filesystem", "rootdirectory", "/elsewhere"),
        ("purging", "age", 1.0),
        ("log", "level", "debug"),
        ("database", "url", "sqlite://"),
    ],
)
def test_frozen(config: Config, owner: str, attribute: str, value: object) -> None:
    assert config.storage.filesystem is not None
    objects = {
        "config": config,
        "http": config.http,
        "storage": config.storage,
        "filesystem": config.storage.filesystem,
        "purging": config.storage.maintenance.uploadpurging,
        "log": config.log,
        "database": config.database,
    }
    target = objects[owner]
    before = getattr(target, attribute)
    with pytest.raises(ValidationError, match="frozen"):
        setattr(target, attribute, value)
    assert getattr(target, attribute) == before


def test_built_directly() -> None:
    config = Config.model_validate(
        {"storage": "inmemory", "http": {"addr": "127.0.0.1:5000"}, "version": 0.1}
    )
    assert config.storage.driver_name == "inmemory"
    assert config.http.tcp_address == ("127.0.0.1", 5000)
    assert config.version == "0.1"


def test_submodels_validate_alone() -> None:
    assert HttpConfig.model_validate({"addr": "[::]:5000"}).tcp_address == ("::", 5000)
    with pytest.raises(ValidationError):
        StorageConfig.model_validate({"filesystem": {}, "s3": {"bucket": "b", "region": "r"}})


def test_driver_name() -> None:
    storage = StorageConfig.model_validate({"s3": {"bucket": "b", "regionendpoint": "http://s3"}})
    assert storage.driver_name == "s3"
    assert storage.filesystem is None


def test_default_data_directory() -> None:
    assert default_data_directory({"HOME": "/home/a"}) == "/home/a/.local/share/dockyard"
    assert default_data_directory({"HOME": "/home/a", "XDG_DATA_HOME": "/x"}) == "/x/dockyard"


@pytest.mark.parametrize(
    "addr",
    [
        "5000",
        ":",
        ":0",
        ":-1",
        "::1:5000",
        "[::1]",
        "[nope]:1",
        "a b:1",
        "h:\uff15\uff10\uff10\uff10",
    ],
)
def test_bad_tcp_addresses(addr: str) -> None:
    with pytest.raises(ValueError, match="invalid address"):
        parse_tcp_address(addr)


def test_prefix_is_normalized() -> None:
    assert HttpConfig.model_validate({"prefix": "/my/nested/registry/"}).prefix == (
        "/my/nested/registry"
    )
    assert HttpConfig.model_validate({"prefix": "/"}).prefix == ""
