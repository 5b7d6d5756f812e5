"""Environment overrides: ``REGISTRY_`` + a key's upper-cased path joined by ``_``.

As in Distribution, variables apply in lexical order (so ``REGISTRY_STORAGE=s3`` comes before
``REGISTRY_STORAGE_S3_BUCKET``), values are YAML, and a name is resolved against the models'
field structure, so a key holding an underscore still resolves. Below a mapping of free keys
(``log.fields``, ``auth``, ...) an existing key is matched first; otherwise one token makes one
new, lower-cased key, and a number indexes a list (``..._HOSTS_0``). A name that resolves to no
key is ignored with a warning, as Distribution does: orchestrators set ``REGISTRY_*`` variables
of their own (Kubernetes does for a service named ``registry``).
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel

from dockyard.config.errors import ConfigError
from dockyard.config.yamlfile import load_yaml

__all__ = ["PREFIX", "Overrides", "apply_environment"]

PREFIX = "REGISTRY_"

Path = tuple[str | int, ...]


@dataclass
class Overrides:
    """What the environment changed: each key path set and the variable that set it."""

    paths: dict[Path, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def sources_of(self, path: Path) -> list[str]:
        """The variables that set ``path``, a section containing it, or keys inside it."""
        for length in range(len(path), 0, -1):
            name = self.paths.get(path[:length])
            if name is not None:
                return [name]
        if not path:
            return []
        return [name for key, name in self.paths.items() if key[: len(path)] == path]


def apply_environment(
    tree: dict[str, Any], model: type[BaseModel], environ: Mapping[str, str]
) -> tuple[dict[str, Any], Overrides]:
    """``tree`` (a parsed config file) with the environment's overrides applied."""
    overrides = Overrides()
    for name in sorted(environ):
        if not name.startswith(PREFIX):
            continue
        tokens = name[len(PREFIX) :].split("_")
        if "" in tokens:
            overrides.warnings.append(f"ignoring {name}: not a configuration key path")
            continue
        try:
            result = _assign(tree, model, tokens, environ[name])
        except ValueError as exc:
            raise ConfigError.at(name, str(exc)) from None
        if result is None:
            overrides.warnings.append(f"ignoring {name}: no configuration key matches it")
            continue
        tree, path = result
        overrides.paths[path] = name
    return tree, overrides


def _shape(annotation: Any) -> Any:
    """The structure under a type: Annotated and Optional peeled off."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _shape(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        return _shape(members[0]) if len(members) == 1 else Any
    return annotation


def _is_model(shape: Any) -> bool:
    return isinstance(shape, type) and issubclass(shape, BaseModel)


def _is_leaf(shape: Any) -> bool:
    return shape is not Any and not _is_model(shape) and get_origin(shape) not in (dict, list)


def _longest_match(tokens: list[str], names: Any) -> tuple[str, int] | None:
    upper = [token.upper() for token in tokens]
    best: tuple[str, int] | None = None
    for name in names:
        if not isinstance(name, str):
            continue
        parts = name.upper().split("_")
        if upper[: len(parts)] == parts and (best is None or len(parts) > best[1]):
            best = (name, len(parts))
    return best


def _assign(node: Any, shape: Any, tokens: list[str], raw: str) -> tuple[Any, Path] | None:
    """``node`` with ``raw`` set at the path ``tokens`` spell, and that path; None if the
    tokens name no key under ``shape``."""
    if not tokens:
        return _leaf_value(raw, shape), ()
    shape = _shape(shape)
    if _is_model(shape):
        coerce = getattr(shape, "coerce_raw", None)
        if coerce is not None:
            node = coerce(node)
        mapping = dict(node) if isinstance(node, dict) else {}
        match = _longest_match(tokens, shape.model_fields)
        if match is not None:
            key, used = match
            return _assign_item(
                mapping, key, shape.model_fields[key].annotation, tokens[used:], raw
            )
        if shape.model_config.get("extra") == "allow":
            key, used = _free_key(mapping, tokens, Any)
            return _assign_item(mapping, key, Any, tokens[used:], raw)
        return None
    origin = get_origin(shape)
    if origin is list or (shape is Any and isinstance(node, list)):
        element = get_args(shape)[0] if origin is list else Any
        items = list(node) if isinstance(node, list) else []
        if not tokens[0].isdigit() or int(tokens[0]) > len(items):
            return None
        index = int(tokens[0])
        if index == len(items):
            items.append(None)
        result = _assign(items[index], element, tokens[1:], raw)
        if result is None:
            return None
        items[index] = result[0]
        return items, (index, *result[1])
    if origin is dict or shape is Any:
        value_shape = get_args(shape)[1] if origin is dict else Any
        mapping = dict(node) if isinstance(node, dict) else {}
        key, used = _free_key(mapping, tokens, value_shape)
        return _assign_item(mapping, key, value_shape, tokens[used:], raw)
    return None  # a scalar has no keys below it


def _assign_item(
    mapping: dict[str, Any], key: str, shape: Any, rest: list[str], raw: str
) -> tuple[Any, Path] | None:
    result = _assign(mapping.get(key), shape, rest, raw)
    if result is None:
        return None
    mapping[key] = result[0]
    return mapping, (key, *result[1])


def _free_key(mapping: dict[str, Any], tokens: list[str], value_shape: Any) -> tuple[str, int]:
    """The key of a free mapping that ``tokens`` start with, and how many tokens it takes."""
    match = _longest_match(tokens, mapping)
    if match is not None:
        return match
    value_shape = _shape(value_shape)
    if _is_leaf(value_shape):
        return "_".join(tokens).lower(), len(tokens)
    if get_origin(value_shape) is list and len(tokens) > 1 and tokens[-1].isdigit():
        return "_".join(tokens[:-1]).lower(), len(tokens) - 1
    return tokens[0].lower(), 1


_NULLS = ("", "~", "null", "Null", "NULL")


def _leaf_value(raw: str, shape: Any) -> Any:
    """The variable's value, read as YAML. A string key takes the text itself when YAML
    would make it something else (``#x``, ``a: b``), rather than failing."""
    shape = _shape(shape)
    textual = shape is str or shape is Any
    try:
        value = load_yaml(raw)
    except yaml.YAMLError as exc:
        if textual:
            return raw
        raise ValueError(f"invalid YAML value: {exc}") from None
    if shape is str and (
        isinstance(value, dict | list) or (value is None and raw.strip() not in _NULLS)
    ):
        return raw
    return value
