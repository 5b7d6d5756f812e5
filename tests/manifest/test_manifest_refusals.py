"""Every manifest the parser refuses, and the field each refusal names."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from dockyard.errors import ManifestInvalid
from dockyard.manifest import parse
from dockyard.mediatypes import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DOCKER_SCHEMA1,
    DOCKER_SCHEMA1_SIGNED,
    EMPTY_JSON,
    OCI_INDEX,
    OCI_MANIFEST,
)

DIGEST = "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0"
EMPTY = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

Document = dict[str, Any]


def descriptor() -> Document:
    return {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": DIGEST, "size": 1}


def image(media_type: str | None = OCI_MANIFEST) -> Document:
    document: Document = {
        "schemaVersion": 2,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": DIGEST,
            "size": 7,
        },
        "layers": [descriptor()],
    }
    if media_type is not None:
        document["mediaType"] = media_type
    return document


def index(media_type: str | None = OCI_INDEX) -> Document:
    document: Document = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": DIGEST,
                "size": 7,
                "platform": {"architecture": "amd64", "os": "linux"},
            }
        ],
    }
    if media_type is not None:
        document["mediaType"] = media_type
    return document


def encode(document: object) -> bytes:
    return json.dumps(document).encode()


def changed(document: Document, change: Callable[[Document], object]) -> bytes:
    change(document)
    return encode(document)


def refused(payload: bytes, content_type: str | None) -> ManifestInvalid:
    with pytest.raises(ManifestInvalid) as caught:
        parse(payload, content_type)
    return caught.value


def test_the_bases_are_valid() -> None:
    # Each refusal below changes one thing in these.
    assert parse(encode(image()), OCI_MANIFEST).media_type == OCI_MANIFEST
    assert parse(encode(index()), OCI_INDEX).media_type == OCI_INDEX
    assert parse(encode(image(DOCKER_MANIFEST)), DOCKER_MANIFEST).media_type == DOCKER_MANIFEST
    assert parse(encode(index(DOCKER_MANIFEST_LIST)), None).media_type == DOCKER_MANIFEST_LIST


# -- the bytes are not a JSON object ------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        pytest.param(b"\xff\xfe{}", "not UTF-8", id="invalid-utf8"),
        pytest.param(encode(image()).decode().encode("utf-16"), "not UTF-8", id="utf16"),
        pytest.param(encode(image()).decode().encode("utf-32-le"), "not JSON", id="utf32"),
        pytest.param(b"\xef\xbb\xbf" + encode(image()), "not JSON", id="utf8-bom"),
        pytest.param(b"", "not JSON", id="empty"),
        pytest.param(b"{", "not JSON", id="truncated"),
        pytest.param(b"hello", "not JSON", id="text"),
        pytest.param(b'{"schemaVersion": 2} trailing', "not JSON", id="trailing"),
        pytest.param(b'{"schemaVersion": NaN}', "NaN", id="nan"),
        pytest.param(b'{"schemaVersion": -Infinity}', "Infinity", id="infinity"),
        pytest.param(b"[" * 100_000, "nested too deeply", id="deep-nesting"),
        pytest.param(b'{"size": 1' + b"0" * 5000 + b"}", "number too long", id="huge-integer"),
        pytest.param(b"[]", "JSON object, not an array", id="array"),
        pytest.param(b"null", "JSON object, not null", id="null"),
        pytest.param(b'"manifest"', "JSON object, not a string", id="string"),
        pytest.param(b"2", "JSON object, not a number", id="number"),
        pytest.param(
            b'{"schemaVersion": 2, "schemaVersion": 1}', "'schemaVersion' appears twice", id="dup"
        ),
        pytest.param(
            b'{"schemaVersion": 2, "annotations": {"a": "\\ud800"}}', "surrogate", id="surrogate"
        ),
    ],
)
def test_payload_that_is_not_a_json_object(payload: bytes, fragment: str) -> None:
    error = refused(payload, OCI_MANIFEST)
    assert fragment in error.text


def test_a_valid_surrogate_pair_is_fine() -> None:
    document = image()
    document["annotations"] = {"emoji": "\U0001f600"}
    payload = encode(document)  # ensure_ascii writes "\ud83d\ude00"
    assert b"\\ud83d\\ude00" in payload
    assert parse(payload, OCI_MANIFEST).annotations == {"emoji": "\U0001f600"}


# -- media type and schema version --------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "content_type", "field", "fragment"),
    [
        pytest.param(
            encode({"schemaVersion": 2}), None, "mediaType", "cannot be told", id="nothing-to-infer"
        ),
        pytest.param(
            encode({"schemaVersion": 2, "annotations": {}}),
            "application/json",
            "mediaType",
            "cannot be told",
            id="non-manifest-content-type",
        ),
        pytest.param(
            encode(image("application/vnd.oci.artifact.manifest.v1+json")),
            None,
            "mediaType",
            "unsupported manifest type",
            id="removed-artifact-manifest",
        ),
        pytest.param(
            encode(image("application/json")), None, "mediaType", "unsupported", id="json"
        ),
        pytest.param(encode(image("")), None, "mediaType", "unsupported", id="empty-string"),
        pytest.param(
            changed(image(), lambda d: d.update(mediaType=5)),
            None,
            "mediaType",
            "must be a string, not a number",
            id="not-a-string",
        ),
        pytest.param(
            encode(image(OCI_MANIFEST)),
            DOCKER_MANIFEST,
            "mediaType",
            "does not match",
            id="content-type-mismatch",
        ),
        pytest.param(
            encode(index(OCI_INDEX)),
            OCI_MANIFEST,
            "mediaType",
            "does not match",
            id="index-pushed-as-manifest",
        ),
        pytest.param(
            encode(index(DOCKER_MANIFEST_LIST)),
            OCI_INDEX,
            "mediaType",
            "does not match",
            id="list-pushed-as-index",
        ),
        pytest.param(
            encode({**image(None), "manifests": []}),
            None,
            "mediaType",
            "both manifests and config/layers",
            id="ambiguous-inference",
        ),
        pytest.param(
            changed(image(), lambda d: d.pop("schemaVersion")),
            None,
            "schemaVersion",
            "is required",
            id="schema-version-missing",
        ),
        pytest.param(
            changed(image(), lambda d: d.update(schemaVersion=3)),
            None,
            "schemaVersion",
            "must be 2, not 3",
            id="schema-version-3",
        ),
        pytest.param(
            changed(image(), lambda d: d.update(schemaVersion="2")),
            None,
            "schemaVersion",
            "must be an integer",
            id="schema-version-string",
        ),
        pytest.param(
            changed(image(), lambda d: d.update(schemaVersion=2.0)),
            None,
            "schemaVersion",
            "must be an integer",
            id="schema-version-float",
        ),
        pytest.param(
            changed(image(), lambda d: d.update(schemaVersion=True)),
            None,
            "schemaVersion",
            "must be an integer, not a boolean",
            id="schema-version-bool",
        ),
    ],
)
def test_media_type_and_schema_version(
    payload: bytes, content_type: str | None, field: str, fragment: str
) -> None:
    error = refused(payload, content_type)
    assert error.detail == {"field": field}
    assert fragment in error.text
    assert field in error.text


SCHEMA1 = {
    "schemaVersion": 1,
    "name": "library/hello",
    "tag": "latest",
    "architecture": "amd64",
    "fsLayers": [{"blobSum": DIGEST}],
    "history": [{"v1Compatibility": "{}"}],
}


@pytest.mark.parametrize(
    ("document", "content_type", "field"),
    [
        pytest.param(SCHEMA1, DOCKER_SCHEMA1, "schemaVersion", id="content-type-v1"),
        pytest.param(SCHEMA1, DOCKER_SCHEMA1_SIGNED, "schemaVersion", id="content-type-jws"),
        pytest.param(SCHEMA1, None, "schemaVersion", id="schema-version-1"),
        pytest.param(SCHEMA1, "application/json", "schemaVersion", id="schema-version-1-json"),
        pytest.param(
            {**SCHEMA1, "mediaType": DOCKER_SCHEMA1}, None, "mediaType", id="media-type-v1"
        ),
        pytest.param(
            {**image(), "mediaType": DOCKER_SCHEMA1_SIGNED}, None, "mediaType", id="signed-type"
        ),
        pytest.param(
            image(None), DOCKER_SCHEMA1_SIGNED, "Content-Type", id="schema2-body-schema1-header"
        ),
    ],
)
def test_docker_schema1_is_not_supported(
    document: Document, content_type: str | None, field: str
) -> None:
    error = refused(encode(document), content_type)
    assert error.detail == {"field": field}
    assert "schema1 manifests are not supported" in error.text


@pytest.mark.parametrize(
    ("document", "content_type", "fragment"),
    [
        pytest.param(image(None), DOCKER_MANIFEST, "Docker schema2 manifest", id="schema2"),
        pytest.param(index(None), DOCKER_MANIFEST_LIST, "Docker manifest list", id="list"),
    ],
)
def test_docker_manifests_must_carry_their_media_type(
    document: Document, content_type: str, fragment: str
) -> None:
    error = refused(encode(document), content_type)
    assert error.detail == {"field": "mediaType"}
    assert f"mediaType is required in a {fragment}" in error.text


# -- required members ---------------------------------------------------------------------------

IMAGE_TYPES = [OCI_MANIFEST, DOCKER_MANIFEST]
INDEX_TYPES = [OCI_INDEX, DOCKER_MANIFEST_LIST]


@pytest.mark.parametrize("media_type", IMAGE_TYPES)
@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        pytest.param(lambda d: d.pop("config"), "config", "is required", id="config-missing"),
        pytest.param(lambda d: d.update(config=None), "config", "not null", id="config-null"),
        pytest.param(lambda d: d.update(config=[]), "config", "not an array", id="config-array"),
        pytest.param(lambda d: d.pop("layers"), "layers", "is required", id="layers-missing"),
        pytest.param(lambda d: d.update(layers=None), "layers", "not null", id="layers-null"),
        pytest.param(lambda d: d.update(layers={}), "layers", "not an object", id="layers-obj"),
        pytest.param(lambda d: d.update(layers=[7]), "layers[0]", "JSON object", id="layer-num"),
        pytest.param(
            lambda d: d.update(manifests=[]), "manifests", "must not appear", id="has-manifests"
        ),
    ],
)
def test_image_manifest_members(
    media_type: str, change: Callable[[Document], object], field: str, fragment: str
) -> None:
    error = refused(changed(image(media_type), change), media_type)
    assert error.detail == {"field": field}
    assert fragment in error.text


@pytest.mark.parametrize("media_type", INDEX_TYPES)
@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        pytest.param(lambda d: d.pop("manifests"), "manifests", "is required", id="missing"),
        pytest.param(lambda d: d.update(manifests=None), "manifests", "not null", id="null"),
        pytest.param(lambda d: d.update(manifests="x"), "manifests", "not a string", id="str"),
        pytest.param(
            lambda d: d.update(manifests=[[]]), "manifests[0]", "not an array", id="entry"
        ),
        pytest.param(lambda d: d.update(layers=[]), "layers", "must not appear", id="has-layers"),
        pytest.param(
            lambda d: d.update(config=descriptor()), "config", "must not appear", id="has-config"
        ),
    ],
)
def test_index_members(
    media_type: str, change: Callable[[Document], object], field: str, fragment: str
) -> None:
    error = refused(changed(index(media_type), change), media_type)
    assert error.detail == {"field": field}
    assert fragment in error.text


# -- descriptors --------------------------------------------------------------------------------


_REMOVE = object()


def _layer(**members: Any) -> Callable[[Document], object]:
    """Change (or with ``_REMOVE``, remove) members of the first layer."""

    def change(document: Document) -> None:
        layer = document["layers"][0]
        for key, value in members.items():
            if value is _REMOVE:
                layer.pop(key)
            else:
                layer[key] = value

    return change


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        pytest.param(_layer(mediaType=_REMOVE), "layers[0].mediaType", "is required", id="mt"),
        pytest.param(_layer(mediaType=None), "layers[0].mediaType", "not null", id="mt-null"),
        pytest.param(_layer(mediaType=1), "layers[0].mediaType", "not a number", id="mt-num"),
        pytest.param(_layer(mediaType="tar"), "layers[0].mediaType", "media type", id="mt-bad"),
        pytest.param(_layer(mediaType=""), "layers[0].mediaType", "media type", id="mt-empty"),
        pytest.param(
            _layer(mediaType="application/vnd oci"),
            "layers[0].mediaType",
            "media type",
            id="mt-space",
        ),
        pytest.param(_layer(digest=_REMOVE), "layers[0].digest", "is required", id="dg"),
        pytest.param(_layer(digest=5), "layers[0].digest", "not a number", id="dg-num"),
        pytest.param(
            _layer(digest="sha256:abc"), "layers[0].digest", "not a valid digest", id="dg-short"
        ),
        pytest.param(
            _layer(digest=DIGEST.upper()), "layers[0].digest", "not a valid digest", id="dg-upper"
        ),
        pytest.param(
            _layer(digest=DIGEST.split(":")[1]), "layers[0].digest", "not a valid", id="dg-bare"
        ),
        pytest.param(
            _layer(digest="md5:d41d8cd98f00b204e9800998ecf8427e"),
            "layers[0].digest",
            "unsupported digest algorithm",
            id="dg-unknown-algorithm",
        ),
        pytest.param(_layer(size=_REMOVE), "layers[0].size", "is required", id="size"),
        pytest.param(_layer(size=-1), "layers[0].size", "not -1", id="size-negative"),
        pytest.param(_layer(size=2**63), "layers[0].size", "between 0 and", id="size-int64"),
        pytest.param(_layer(size=1.5), "layers[0].size", "an integer", id="size-float"),
        pytest.param(_layer(size=1.0), "layers[0].size", "an integer", id="size-float-whole"),
        pytest.param(_layer(size="1"), "layers[0].size", "an integer", id="size-string"),
        pytest.param(_layer(size=True), "layers[0].size", "an integer", id="size-bool"),
        pytest.param(_layer(size=None), "layers[0].size", "an integer", id="size-null"),
        pytest.param(_layer(urls="https://x/"), "layers[0].urls", "an array", id="urls-str"),
        pytest.param(_layer(urls=[1]), "layers[0].urls[0]", "a string", id="urls-num"),
        pytest.param(
            _layer(urls=["/relative/path"]), "layers[0].urls[0]", "absolute URI", id="urls-rel"
        ),
        pytest.param(
            _layer(urls=["https://example.com/a b"]), "layers[0].urls[0]", "URI", id="urls-space"
        ),
        pytest.param(
            _layer(annotations=[]), "layers[0].annotations", "JSON object", id="ann-array"
        ),
        pytest.param(
            _layer(annotations={"k": 1}), "layers[0].annotations['k']", "a string", id="ann-num"
        ),
        pytest.param(
            _layer(annotations={"k": None}), "layers[0].annotations['k']", "null", id="ann-null"
        ),
        pytest.param(_layer(platform="linux"), "layers[0].platform", "JSON object", id="pf-str"),
        pytest.param(
            _layer(platform={"architecture": "amd64"}),
            "layers[0].platform.os",
            "is required",
            id="pf-no-os",
        ),
        pytest.param(
            _layer(platform={"os": "linux"}),
            "layers[0].platform.architecture",
            "is required",
            id="pf-no-arch",
        ),
        pytest.param(
            _layer(platform={"architecture": 64, "os": "linux"}),
            "layers[0].platform.architecture",
            "a string",
            id="pf-arch-num",
        ),
        pytest.param(
            _layer(platform={"architecture": "amd64", "os": "windows", "os.features": "win32k"}),
            "layers[0].platform.os.features",
            "an array",
            id="pf-features-str",
        ),
        pytest.param(
            _layer(platform={"architecture": "arm", "os": "linux", "variant": ["v7"]}),
            "layers[0].platform.variant",
            "a string",
            id="pf-variant",
        ),
        pytest.param(_layer(artifactType=7), "layers[0].artifactType", "a string", id="at-num"),
        pytest.param(
            _layer(artifactType="sbom"), "layers[0].artifactType", "media type", id="at-bad"
        ),
        pytest.param(_layer(data=1), "layers[0].data", "a string", id="data-num"),
        pytest.param(_layer(data="e30"), "layers[0].data", "base64", id="data-not-base64"),
        pytest.param(
            _layer(data="e30=", digest=EMPTY, size=3),
            "layers[0].data",
            "holds 2 bytes",
            id="data-size",
        ),
        pytest.param(
            _layer(data="e30=", size=2), "layers[0].data", "does not match", id="data-digest"
        ),
    ],
)
def test_descriptor_fields(change: Callable[[Document], object], field: str, fragment: str) -> None:
    error = refused(changed(image(), change), OCI_MANIFEST)
    assert error.detail == {"field": field}
    assert fragment in error.text
    assert field in error.text


def test_descriptor_with_valid_embedded_data() -> None:
    document = image()
    document["layers"][0].update(mediaType=EMPTY_JSON, digest=EMPTY, size=2, data="e30=")
    assert parse(encode(document), OCI_MANIFEST).blobs == (DIGEST, EMPTY)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param(lambda d: d["config"].update(size=-5), "config.size", id="config"),
        pytest.param(
            lambda d: d.update(subject={"mediaType": OCI_MANIFEST, "size": 1}),
            "subject.digest",
            id="subject-digest",
        ),
        pytest.param(lambda d: d.update(subject="sha256:00"), "subject", id="subject-str"),
        pytest.param(lambda d: d.update(subject=None), "subject", id="subject-null"),
    ],
)
def test_other_descriptors_are_checked_too(
    change: Callable[[Document], object], field: str
) -> None:
    error = refused(changed(image(), change), OCI_MANIFEST)
    assert error.detail == {"field": field}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param(
            lambda d: d["manifests"][0].update(digest="sha256:"), "manifests[0].digest", id="dg"
        ),
        pytest.param(
            lambda d: d["manifests"][0]["platform"].pop("os"), "manifests[0].platform.os", id="os"
        ),
        pytest.param(
            lambda d: d.update(subject={"digest": DIGEST, "size": 1}),
            "subject.mediaType",
            id="subject",
        ),
    ],
)
def test_index_descriptors_are_checked(change: Callable[[Document], object], field: str) -> None:
    error = refused(changed(index(), change), OCI_INDEX)
    assert error.detail == {"field": field}


# -- top-level annotations and artifactType -----------------------------------------------------


@pytest.mark.parametrize("make", [image, index])
@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        pytest.param(lambda d: d.update(annotations=[]), "annotations", "JSON object", id="arr"),
        pytest.param(lambda d: d.update(annotations=None), "annotations", "not null", id="null"),
        pytest.param(
            lambda d: d.update(annotations={"a": "b", "c": {"d": "e"}}),
            "annotations['c']",
            "a string",
            id="nested",
        ),
        pytest.param(
            lambda d: d.update(annotations={"a": True}), "annotations['a']", "boolean", id="bool"
        ),
        pytest.param(lambda d: d.update(artifactType=1), "artifactType", "a string", id="at-num"),
        pytest.param(
            lambda d: d.update(artifactType="not a type"), "artifactType", "media type", id="at"
        ),
    ],
)
def test_top_level_members(
    make: Callable[[], Document],
    change: Callable[[Document], object],
    field: str,
    fragment: str,
) -> None:
    document = make()
    error = refused(changed(document, change), document["mediaType"])
    assert error.detail == {"field": field}
    assert fragment in error.text


# -- OCI 1.1 artifacts --------------------------------------------------------------------------


def test_empty_config_without_artifact_type_is_accepted() -> None:
    # Producers should set artifactType with an empty config; the registry stays lenient.
    document = image()
    document["config"] = {"mediaType": EMPTY_JSON, "digest": EMPTY, "size": 2}
    assert parse(encode(document), OCI_MANIFEST).artifact_type == EMPTY_JSON
    document["artifactType"] = "application/vnd.example+type"
    assert parse(encode(document), OCI_MANIFEST).artifact_type == "application/vnd.example+type"


def test_refusals_render_as_manifest_invalid() -> None:
    error = refused(changed(image(), _layer(size=-1)), OCI_MANIFEST)
    body = error.envelope()
    assert body["errors"][0]["code"] == "MANIFEST_INVALID"
    assert body["errors"][0]["detail"] == {"field": "layers[0].size"}
    assert error.status == 400


def test_messages_quote_offending_values_briefly() -> None:
    huge = 10**300
    error = refused(changed(image(), _layer(size=huge)), OCI_MANIFEST)
    assert error.detail == {"field": "layers[0].size"}
    assert len(error.text) < 200
    error = refused(changed(image(), lambda d: d.update(schemaVersion=huge)), OCI_MANIFEST)
    assert error.detail == {"field": "schemaVersion"}
    assert len(error.text) < 200
