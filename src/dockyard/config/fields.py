"""Building blocks shared by the config models: the strict base model, scalar text,
loosely typed sections, addresses and the default data directory."""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationInfo, model_validator

__all__ = [
    "ENVIRON_CONTEXT",
    "Headers",
    "Model",
    "Section",
    "Text",
    "TextList",
    "default_data_directory",
    "empty_list_if_null",
    "environ_of",
    "parse_tcp_address",
]

ENVIRON_CONTEXT = "environ"
"""Validation context key holding the environment the config is loaded with."""


class Model(BaseModel):
    """Frozen, and an unknown key is an error rather than silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    @model_validator(mode="before")
    @classmethod
    def _null_means_defaults(cls, data: Any) -> Any:
        # ``delete:`` with nothing under it is YAML null; Distribution reads it as all defaults.
        return {} if data is None else data


def _scalar_text(value: Any) -> Any:
    # YAML turns ``version: 0.1`` into a float and ``secret: 1234`` into an int; a string field
    # takes the scalar's text, as Go's YAML decoder does for a string target.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


Text = Annotated[str, BeforeValidator(_scalar_text)]
"""A string field that also takes a YAML number, boolean or date as its text."""


def _mapping_or_empty(value: Any) -> Any:
    return {} if value is None else value


Section = Annotated[dict[str, Any], BeforeValidator(_mapping_or_empty)]
"""A section accepted by name whose contents are not typed (yet)."""


def empty_list_if_null(value: Any) -> Any:
    return [] if value is None else value


TextList = Annotated[list[Text], BeforeValidator(empty_list_if_null)]


def _header_values(value: Any) -> Any:
    if isinstance(value, dict):
        # Go's http.Header wants a list of values; a single value is taken as a list of one.
        return {
            name: [values] if isinstance(values, str | int | float) else values
            for name, values in value.items()
        }
    return _mapping_or_empty(value)


Headers = Annotated[dict[str, list[Text]], BeforeValidator(_header_values)]
"""HTTP header name -> values, as Distribution's ``http.headers``."""


def environ_of(info: ValidationInfo) -> Mapping[str, str]:
    """The environment given to :func:`load_config`, else the process's own."""
    context = info.context
    if isinstance(context, Mapping):
        environ = context.get(ENVIRON_CONTEXT)
        if isinstance(environ, Mapping):
            return environ
    return os.environ


def default_data_directory(environ: Mapping[str, str]) -> str:
    """``$XDG_DATA_HOME/dockyard``, else ``~/.local/share/dockyard``: no root needed."""
    data_home = environ.get("XDG_DATA_HOME", "")
    if not os.path.isabs(data_home):  # the XDG spec says to ignore a relative value
        home = environ.get("HOME") or os.path.expanduser("~")
        data_home = os.path.join(home, ".local", "share")
    return os.path.join(data_home, "dockyard")


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_DOTTED_DECIMAL = re.compile(r"[0-9.]+")


def parse_tcp_address(addr: str) -> tuple[str, int]:
    """``HOST:PORT`` as Go's ``net.Listen`` takes it: ``:5000``, ``0.0.0.0:5000``,
    ``[::1]:5000``, ``localhost:5000``. The host is ``""`` for every interface and IPv6
    hosts come back without brackets. :class:`ValueError` on anything else."""
    expected = f"invalid address {addr!r} (expected HOST:PORT, e.g. :5000 or 127.0.0.1:5000)"
    host, colon, port = addr.rpartition(":")
    if not colon or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(expected)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(expected) from None
    elif host and not _HOSTNAME.fullmatch(host):
        raise ValueError(expected)
    elif _DOTTED_DECIMAL.fullmatch(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(expected) from None
    return host, int(port)
