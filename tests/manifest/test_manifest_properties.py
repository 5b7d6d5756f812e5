"""Properties of the parser over generated input: it refuses only with ``ManifestInvalid``,
and descriptors survive a trip through JSON."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dockyard.errors import ManifestInvalid
from dockyard.manifest import Descriptor, ParsedManifest, parse
from dockyard.manifest.descriptor import FOREIGN_LAYER_TYPES, parse_descriptor
from dockyard.mediatypes import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DOCKER_SCHEMA1,
    DOCKER_SCHEMA1_SIGNED,
    EMPTY_JSON,
    OCI_INDEX,
    OCI_MANIFEST,
)

FUZZ = settings(max_examples=150, deadline=None)
ROUND_TRIP = settings(max_examples=60, deadline=None)

KNOWN_TYPES = [
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DOCKER_SCHEMA1,
    DOCKER_SCHEMA1_SIGNED,
    EMPTY_JSON,
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    *sorted(FOREIGN_LAYER_TYPES),
]

content_types = st.one_of(
    st.none(),
    st.sampled_from(["", "application/json", *KNOWN_TYPES]),
    st.sampled_from(KNOWN_TYPES).map(lambda t: f"{t}; charset=utf-8"),
    st.text(max_size=40),
)

# Values a manifest nearly holds: wrong algorithms, short or cased digests, odd media types.
near_misses = st.sampled_from(
    [
        "",
        "sha256:",
        "sha256:" + "a" * 63,
        "sha256:" + "A" * 64,
        "sha512:" + "a" * 64,
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
        "a" * 64,
        "application",
        "application/",
        "/json",
        "application/vnd.oci.empty.v1+json",
        "application/vnd.docker.distribution.manifest.v1+json",
        "https://example.com/x",
        "relative/url",
        "\u0000",
        "e30=",
        "e30",
    ]
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-2, max_value=3),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    near_misses,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)

_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$&^_.+-"
_names = st.builds(
    str.__add__,
    st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789"),
    st.text(_NAME_CHARS, max_size=20),
)
media_types = st.one_of(
    st.sampled_from(KNOWN_TYPES),
    st.builds(lambda kind, sub: f"{kind}/{sub}", _names, _names),
)
digests = st.one_of(
    st.text("0123456789abcdef", min_size=64, max_size=64).map("sha256:".__add__),
    st.text("0123456789abcdef", min_size=128, max_size=128).map("sha512:".__add__),
)
sizes = st.integers(min_value=0, max_value=2**63 - 1)
urls = st.from_regex(
    r"https?://[a-z0-9.-]{1,20}(/[A-Za-z0-9._~:@!$&'()*+,;=%-]{0,15}){0,3}", fullmatch=True
)
platforms = st.fixed_dictionaries(
    {"architecture": st.text(max_size=10), "os": st.text(max_size=10)},
    optional={
        "variant": st.text(max_size=5),
        "os.version": st.text(max_size=12),
        "os.features": st.lists(st.text(max_size=8), max_size=3),
        "features": st.lists(st.text(max_size=8), max_size=3),
    },
)

descriptors = st.builds(
    Descriptor,
    media_type=media_types,
    digest=digests,
    size=sizes,
    artifact_type=st.none() | media_types,
    # Empty maps and lists mean "not set" (to_json omits them), so generate them non-empty.
    annotations=st.none() | st.dictionaries(st.text(), st.text(), min_size=1, max_size=4),
    platform=st.none() | platforms,
    urls=st.lists(urls, max_size=3).map(tuple),
)


def _accepted_or_refused(payload: bytes, content_type: str | None) -> ParsedManifest | None:
    """Parse, allowing only ``ManifestInvalid`` as a refusal."""
    try:
        return parse(payload, content_type)
    except ManifestInvalid as error:
        refusal = error
    assert refusal.code == "MANIFEST_INVALID"
    assert refusal.text.startswith("manifest invalid: ")
    return None


@FUZZ
@given(payload=st.binary(max_size=512), content_type=content_types)
def test_arbitrary_bytes(payload: bytes, content_type: str | None) -> None:
    _accepted_or_refused(payload, content_type)


@FUZZ
@given(value=json_values, content_type=content_types)
def test_arbitrary_json_values(value: Any, content_type: str | None) -> None:
    assert _accepted_or_refused(json.dumps(value).encode(), content_type) is None or isinstance(
        value, dict
    )


# -- manifests close to valid, with one thing changed -------------------------------------------


@st.composite
def valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    media_type = draw(
        st.sampled_from([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST])
    )
    document: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
    if media_type in (OCI_MANIFEST, DOCKER_MANIFEST):
        document["config"] = draw(descriptors).to_json()
        document["layers"] = [d.to_json() for d in draw(st.lists(descriptors, max_size=3))]
    else:
        document["manifests"] = [d.to_json() for d in draw(st.lists(descriptors, max_size=3))]
    if media_type in (OCI_MANIFEST, OCI_INDEX):
        if draw(st.booleans()):
            document["subject"] = draw(descriptors).to_json()
        if draw(st.booleans()):
            document["artifactType"] = draw(media_types)
        if draw(st.booleans()):
            document["annotations"] = draw(st.dictionaries(st.text(), st.text(), max_size=3))
    return document


def _paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [here]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*here, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*here, index)))
    return found


@FUZZ
@given(document=valid_documents(), data=st.data())
def test_manifests_with_one_member_changed(document: dict[str, Any], data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(_paths(document)[1:]))
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    current = parent[path[-1]]
    action = data.draw(st.sampled_from(["replace", "remove", "edit"]))
    if action == "edit" and isinstance(current, str) and current:
        # Keep most of the string: a digest or media type one character off.
        cut = data.draw(st.integers(min_value=0, max_value=len(current) - 1))
        parent[path[-1]] = current[:cut] + data.draw(st.text(max_size=2)) + current[cut + 1 :]
    elif action == "remove":
        if isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    else:
        parent[path[-1]] = data.draw(json_values)
    declared = document.get("mediaType")
    same = st.just(declared) if isinstance(declared, str) else st.none()
    content_type = data.draw(same | content_types)
    _accepted_or_refused(json.dumps(document).encode(), content_type)


@ROUND_TRIP
@given(document=valid_documents())
def test_valid_manifests_parse_to_what_they_say(document: dict[str, Any]) -> None:
    media_type = document["mediaType"]
    if document.get("config", {}).get("mediaType") == EMPTY_JSON:
        document["artifactType"] = "application/vnd.example+type"
    parsed = parse(json.dumps(document).encode(), media_type)
    assert parsed.media_type == media_type
    layers = [parse_descriptor(layer, "layer") for layer in document.get("layers", [])]
    children = [parse_descriptor(child, "child") for child in document.get("manifests", [])]
    assert parsed.layers == tuple(layers)
    assert parsed.manifests == tuple(children)
    assert parsed.children == tuple(dict.fromkeys(child.digest for child in children))
    held = [] if parsed.config is None else [parsed.config.digest]
    held += [d.digest for d in layers if not (d.urls and d.media_type in FOREIGN_LAYER_TYPES)]
    assert parsed.blobs == tuple(dict.fromkeys(held))
    assert len(set(parsed.blobs)) == len(parsed.blobs)


# -- descriptors round-trip ---------------------------------------------------------------------


@ROUND_TRIP
@given(descriptor=descriptors)
def test_descriptor_round_trips_through_json(descriptor: Descriptor) -> None:
    wire = json.loads(json.dumps(descriptor.to_json()))
    assert parse_descriptor(wire, "descriptor") == descriptor


@ROUND_TRIP
@given(descriptor=descriptors, config=descriptors)
def test_descriptor_round_trips_through_a_manifest(
    descriptor: Descriptor, config: Descriptor
) -> None:
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example+type",
        "config": config.to_json(),
        "layers": [descriptor.to_json()],
        "subject": descriptor.to_json(),
    }
    parsed = parse(json.dumps(manifest).encode(), OCI_MANIFEST)
    assert parsed.config == config
    assert parsed.layers == (descriptor,)
    assert parsed.subject == descriptor
    index = {"schemaVersion": 2, "manifests": [descriptor.to_json()]}
    assert parse(json.dumps(index).encode(), None).manifests == (descriptor,)
