"""Loading: read the YAML file, apply the environment, validate into :class:`Config`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from dockyard.config.env import Overrides, apply_environment
from dockyard.config.errors import ConfigError, Problem
from dockyard.config.fields import ENVIRON_CONTEXT
from dockyard.config.models import Config
from dockyard.config.yamlfile import load_yaml

__all__ = ["LoadedConfig", "load_config", "read_config"]

log = logging.getLogger("dockyard.config")


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    warnings: tuple[str, ...]
    """Environment variables that were ignored, and why."""


def load_config(path: str | None, environ: Mapping[str, str]) -> Config:
    """The config in the YAML file at ``path`` (None: all defaults), overridden by the
    ``REGISTRY_*`` variables of ``environ``. :class:`ConfigError` names each bad key."""
    loaded = read_config(path, environ)
    for warning in loaded.warnings:
        log.warning("%s", warning)
    return loaded.config


def read_config(path: str | None, environ: Mapping[str, str]) -> LoadedConfig:
    """:func:`load_config`, returning its warnings rather than logging them."""
    tree = {} if path is None else _read_tree(path)
    tree, overrides = apply_environment(tree, Config, environ)
    try:
        config = Config.model_validate(tree, context={ENVIRON_CONTEXT: environ})
    except ValidationError as exc:
        raise ConfigError(_problem(error, overrides) for error in exc.errors()) from None
    return LoadedConfig(config, tuple(overrides.warnings))


def _read_tree(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError.at(path, "no such file") from None
    except UnicodeDecodeError:
        raise ConfigError.at(path, "not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError.at(path, exc.strerror or str(exc)) from None
    try:
        tree = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError.at(path, _yaml_problem(exc)) from None
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise ConfigError.at(path, "the top level must be a mapping of sections")
    return tree


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    return f"invalid YAML: {exc}"


# Error types whose input is a short scalar worth echoing (never a string: it may be a secret).
_ECHO_INPUT = frozenset(
    {
        "bool_parsing",
        "bool_type",
        "int_parsing",
        "int_type",
        "int_from_float",
        "float_parsing",
        "greater_than_equal",
        "less_than_equal",
        "literal_error",
    }
)


def _problem(error: ErrorDetails, overrides: Overrides) -> Problem:
    location = error["loc"]
    kind = error["type"]
    if kind == "extra_forbidden":
        message = "unknown key"
    elif kind == "missing":
        message = "required"
    elif kind == "value_error":
        message = str(error.get("ctx", {}).get("error", error["msg"]))
    elif kind == "literal_error":
        message = f"must be one of {error.get('ctx', {}).get('expected', '')}"
    else:
        message = error["msg"][:1].lower() + error["msg"][1:]
    if kind in _ECHO_INPUT:
        message += f" (got {error['input']!r})"
    sources = overrides.sources_of(location)
    if sources:
        message += f" (set by {', '.join(sources)})"
    return Problem(_dotted(location), message)


def _dotted(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else part
    return path
