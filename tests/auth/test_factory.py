"""Building the access controller from the config's ``auth`` section."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from dockyard.auth.base import AccessController
from dockyard.auth.factory import access_controller
from dockyard.auth.htpasswd import HtpasswdAccess
from dockyard.auth.open import OpenAccess
from dockyard.auth.options import AuthConfigError
from dockyard.auth.token import TokenAccess

from .issuer import ISSUER, SERVICE, Issuer, SigningKey


@pytest.mark.parametrize("auth", [None, {}, {"none": {}}, {"none": None}])
def test_no_auth_is_open(auth: Any) -> None:
    assert isinstance(access_controller(auth), OpenAccess)


def test_htpasswd(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text(f"alice:{bcrypt.hashpw(b'pw', bcrypt.gensalt(4)).decode()}\n")
    controller = access_controller({"htpasswd": {"realm": "r", "path": str(path)}})
    assert isinstance(controller, HtpasswdAccess)
    assert isinstance(controller, AccessController)


def test_token(tmp_path: Path) -> None:
    bundle = Issuer(SigningKey.create()).write_bundle(tmp_path / "bundle.pem")
    params = {"realm": "r", "service": SERVICE, "issuer": ISSUER, "rootcertbundle": str(bundle)}
    controller = access_controller({"token": params})
    assert isinstance(controller, TokenAccess)
    assert isinstance(controller, AccessController)


@pytest.mark.parametrize(
    ("auth", "path"),
    [
        ({"silly": {"realm": "r", "service": "s"}}, "auth.silly"),
        ({"keystone": {}}, "auth.keystone"),
        ({"htpasswd": "path"}, "auth.htpasswd"),
        ({"htpasswd": {}, "token": {}}, "auth"),
        ({"htpasswd": None}, "auth.htpasswd.realm"),
    ],
)
def test_refusals_name_the_key(auth: dict[str, Any], path: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(f"{path}: ")) as info:
        access_controller(auth)
    assert isinstance(info.value, AuthConfigError)
    assert info.value.path == path
