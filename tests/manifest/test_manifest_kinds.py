"""Each kind of manifest, from literal bytes as clients push them."""

from __future__ import annotations

import dataclasses

import pytest

from dockyard.manifest import Descriptor, ParsedManifest, parse
from dockyard.mediatypes import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    EMPTY_JSON,
    OCI_INDEX,
    OCI_MANIFEST,
)

CONFIG = "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"
LAYER1 = "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0"
LAYER2 = "sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b"
LAYER3 = "sha256:ec4b8955958665577945c89419d1af06b5f7636b4ac3da7f12184802ad867736"
CHILD1 = "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f"
CHILD2 = "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270"
EMPTY = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

OCI_IMAGE = b"""{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {
    "mediaType": "application/vnd.oci.image.config.v1+json",
    "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7",
    "size": 7023
  },
  "layers": [
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
      "digest": "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0",
      "size": 32654
    },
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
      "digest": "sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b",
      "size": 16724
    },
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
      "digest": "sha256:ec4b8955958665577945c89419d1af06b5f7636b4ac3da7f12184802ad867736",
      "size": 73109
    }
  ],
  "annotations": {
    "com.example.key1": "value1",
    "com.example.key2": "value2"
  }
}"""


def test_oci_image_manifest() -> None:
    parsed = parse(OCI_IMAGE, OCI_MANIFEST)
    assert parsed.media_type == OCI_MANIFEST
    assert parsed.config == Descriptor("application/vnd.oci.image.config.v1+json", CONFIG, 7023)
    assert [layer.digest for layer in parsed.layers] == [LAYER1, LAYER2, LAYER3]
    assert [layer.size for layer in parsed.layers] == [32654, 16724, 73109]
    assert parsed.blobs == (CONFIG, LAYER1, LAYER2, LAYER3)
    assert parsed.manifests == ()
    assert parsed.children == ()
    assert parsed.subject is None
    # No artifactType: the referrers API reports the config's media type.
    assert parsed.artifact_type == "application/vnd.oci.image.config.v1+json"
    assert parsed.annotations == {"com.example.key1": "value1", "com.example.key2": "value2"}


def test_oci_image_manifest_without_media_type_takes_the_content_type() -> None:
    payload = OCI_IMAGE.replace(b'"mediaType": "application/vnd.oci.image.manifest.v1+json",', b"")
    assert b"vnd.oci.image.manifest" not in payload
    assert parse(payload, OCI_MANIFEST).media_type == OCI_MANIFEST


def test_oci_image_manifest_without_any_media_type_is_inferred_from_config() -> None:
    payload = b"""{"schemaVersion": 2,
      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7",
                 "size": 7023},
      "layers": []}"""
    parsed = parse(payload, None)
    assert parsed.media_type == OCI_MANIFEST
    assert parsed.blobs == (CONFIG,)


def test_content_type_parameters_and_case_are_ignored() -> None:
    parsed = parse(OCI_IMAGE, "Application/VND.OCI.Image.Manifest.v1+JSON ; charset=utf-8")
    assert parsed.media_type == OCI_MANIFEST


def test_a_content_type_that_is_not_a_manifest_type_defers_to_the_payload() -> None:
    assert parse(OCI_IMAGE, "application/json").media_type == OCI_MANIFEST
    assert parse(OCI_IMAGE, "").media_type == OCI_MANIFEST


OCI_IMAGE_INDEX = b"""{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "size": 7143,
      "digest": "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f",
      "platform": {"architecture": "ppc64le", "os": "linux"}
    },
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "size": 7682,
      "digest": "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
      "platform": {"architecture": "amd64", "os": "linux"}
    },
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "size": 7682,
      "digest": "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
      "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}
    }
  ],
  "annotations": {"com.example.key1": "value1"}
}"""


def test_oci_image_index() -> None:
    parsed = parse(OCI_IMAGE_INDEX, OCI_INDEX)
    assert parsed.media_type == OCI_INDEX
    assert parsed.config is None
    assert parsed.layers == ()
    assert parsed.blobs == ()
    assert len(parsed.manifests) == 3
    assert parsed.manifests[0].platform == {"architecture": "ppc64le", "os": "linux"}
    assert parsed.manifests[2].platform == {"architecture": "arm64", "os": "linux", "variant": "v8"}
    # The same child twice (two platforms) is one reference.
    assert parsed.children == (CHILD1, CHILD2)
    assert parsed.subject is None
    assert parsed.artifact_type is None  # an index has no config to fall back on
    assert parsed.annotations == {"com.example.key1": "value1"}


def test_oci_image_index_without_any_media_type_is_inferred_from_manifests() -> None:
    payload = b'{"schemaVersion": 2, "manifests": []}'
    parsed = parse(payload, "application/octet-stream")
    assert parsed.media_type == OCI_INDEX
    assert parsed.children == ()


DOCKER_SCHEMA2 = b"""{
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {
        "mediaType": "application/vnd.docker.container.image.v1+json",
        "size": 7023,
        "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"
    },
    "layers": [
        {
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": 32654,
            "digest": "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0"
        },
        {
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": 16724,
            "digest": "sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b"
        }
    ]
}"""


def test_docker_schema2_manifest() -> None:
    parsed = parse(DOCKER_SCHEMA2, DOCKER_MANIFEST)
    assert parsed.media_type == DOCKER_MANIFEST
    assert parsed.config == Descriptor(
        "application/vnd.docker.container.image.v1+json", CONFIG, 7023
    )
    assert parsed.blobs == (CONFIG, LAYER1, LAYER2)
    assert parsed.children == ()
    assert parsed.subject is None
    assert parsed.artifact_type == "application/vnd.docker.container.image.v1+json"
    assert parsed.annotations == {}


def test_docker_schema2_manifest_pushed_without_content_type() -> None:
    assert parse(DOCKER_SCHEMA2, None).media_type == DOCKER_MANIFEST


def test_docker_manifest_ignores_oci_only_members() -> None:
    # subject/artifactType/annotations are not part of schema2: unknown members, ignored.
    payload = DOCKER_SCHEMA2.replace(
        b'"schemaVersion": 2,',
        b'"schemaVersion": 2, "artifactType": "application/x.example", "annotations": {"a": "b"},'
        b' "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json",'
        b' "digest": "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f",'
        b' "size": 7143},',
    )
    parsed = parse(payload, DOCKER_MANIFEST)
    assert parsed.subject is None
    assert parsed.annotations == {}
    assert parsed.artifact_type == "application/vnd.docker.container.image.v1+json"


DOCKER_LIST = b"""{
  "schemaVersion": 2,
  "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
  "manifests": [
    {
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "digest": "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f",
      "size": 7143,
      "platform": {"architecture": "ppc64le", "os": "linux"}
    },
    {
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "digest": "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
      "size": 7682,
      "platform": {"architecture": "amd64", "os": "linux", "features": ["sse4"]}
    }
  ]
}"""


def test_docker_manifest_list() -> None:
    parsed = parse(DOCKER_LIST, DOCKER_MANIFEST_LIST)
    assert parsed.media_type == DOCKER_MANIFEST_LIST
    assert parsed.config is None
    assert parsed.blobs == ()
    assert parsed.children == (CHILD1, CHILD2)
    assert parsed.manifests[1].platform == {
        "architecture": "amd64",
        "os": "linux",
        "features": ["sse4"],
    }
    assert parsed.manifests[1].media_type == DOCKER_MANIFEST
    assert parsed.artifact_type is None
    assert parsed.subject is None


OCI_ARTIFACT = b"""{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "artifactType": "application/vnd.example+type",
  "config": {
    "mediaType": "application/vnd.oci.empty.v1+json",
    "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    "size": 2,
    "data": "e30="
  },
  "layers": [
    {
      "mediaType": "application/vnd.oci.empty.v1+json",
      "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
      "size": 2
    }
  ],
  "annotations": {
    "oci.opencontainers.image.created": "2023-01-02T03:04:05Z",
    "com.example.data": "payload"
  }
}"""


def test_oci_artifact_with_empty_config_and_artifact_type() -> None:
    parsed = parse(OCI_ARTIFACT, OCI_MANIFEST)
    assert parsed.media_type == OCI_MANIFEST
    assert parsed.config is not None
    assert parsed.config.media_type == EMPTY_JSON
    assert parsed.artifact_type == "application/vnd.example+type"
    # The empty blob is both config and layer: one blob to hold.
    assert parsed.blobs == (EMPTY,)
    assert parsed.annotations["com.example.data"] == "payload"


def test_empty_artifact_type_falls_back_to_the_config_media_type() -> None:
    payload = b"""{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "artifactType": "",
      "config": {"mediaType": "application/vnd.example.config.v1+json",
        "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7",
                 "size": 123},
      "layers": []}"""
    assert parse(payload, OCI_MANIFEST).artifact_type == "application/vnd.example.config.v1+json"


OCI_REFERRER = b"""{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "artifactType": "application/vnd.example.sbom.v1",
  "config": {
    "mediaType": "application/vnd.oci.empty.v1+json",
    "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    "size": 2
  },
  "layers": [
    {
      "mediaType": "application/spdx+json",
      "digest": "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0",
      "size": 32654
    }
  ],
  "subject": {
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
    "size": 7682
  },
  "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}
}"""


def test_manifest_with_subject() -> None:
    parsed = parse(OCI_REFERRER, OCI_MANIFEST)
    assert parsed.subject == Descriptor(OCI_MANIFEST, CHILD2, 7682)
    assert parsed.artifact_type == "application/vnd.example.sbom.v1"
    # The subject is not a reference the repository must hold (it may be pushed later).
    assert CHILD2 not in parsed.blobs
    assert CHILD2 not in parsed.children
    assert parsed.blobs == (EMPTY, LAYER1)


def test_index_with_subject_and_artifact_type() -> None:
    payload = b"""{
      "schemaVersion": 2,
      "mediaType": "application/vnd.oci.image.index.v1+json",
      "artifactType": "application/vnd.example.signatures",
      "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json",
         "digest": "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f",
         "size": 7143, "artifactType": "application/vnd.example.signature.v1"}
      ],
      "subject": {
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
        "size": 7682
      }
    }"""
    parsed = parse(payload, OCI_INDEX)
    assert parsed.subject == Descriptor(OCI_INDEX, CHILD2, 7682)
    assert parsed.artifact_type == "application/vnd.example.signatures"
    assert parsed.manifests[0].artifact_type == "application/vnd.example.signature.v1"
    assert parsed.children == (CHILD1,)


WINDOWS_FOREIGN = b"""{
  "schemaVersion": 2,
  "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
  "config": {
    "mediaType": "application/vnd.docker.container.image.v1+json",
    "size": 1581,
    "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"
  },
  "layers": [
    {
      "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
      "size": 1571501372,
      "digest": "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0",
      "urls": ["https://mcr.microsoft.com/v2/windows/servercore/blobs/sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0"]
    },
    {
      "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
      "size": 1062589469,
      "digest": "sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b",
      "urls": ["https://mcr.microsoft.com/v2/windows/servercore/blobs/sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b"]
    },
    {
      "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
      "size": 1124,
      "digest": "sha256:ec4b8955958665577945c89419d1af06b5f7636b4ac3da7f12184802ad867736"
    }
  ]
}"""


def test_foreign_windows_layers_with_urls_are_not_blobs_to_hold() -> None:
    parsed = parse(WINDOWS_FOREIGN, DOCKER_MANIFEST)
    assert parsed.layers[0].urls == (
        "https://mcr.microsoft.com/v2/windows/servercore/blobs/" + LAYER1,
    )
    assert parsed.blobs == (CONFIG, LAYER3)


def test_which_layers_with_urls_are_held() -> None:
    payload = b"""{
      "schemaVersion": 2,
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7",
                 "size": 7023},
      "layers": [
        {"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
         "digest": "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0",
         "size": 32654, "urls": ["https://example.com/layer1"]},
        {"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
         "digest": "sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b",
         "size": 16724},
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
         "digest": "sha256:ec4b8955958665577945c89419d1af06b5f7636b4ac3da7f12184802ad867736",
         "size": 73109, "urls": ["https://example.com/layer3"]}
      ]
    }"""
    parsed = parse(payload, OCI_MANIFEST)
    # A non-distributable layer with urls lives elsewhere. One without urls must be here, and
    # so must an ordinary layer, urls or not.
    assert parsed.blobs == (CONFIG, LAYER2, LAYER3)


def test_repeated_layers_are_one_blob_in_order() -> None:
    payload = b"""{
      "schemaVersion": 2,
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": "sha256:ec4b8955958665577945c89419d1af06b5f7636b4ac3da7f12184802ad867736",
                 "size": 7023},
      "layers": [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar",
         "digest": "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0",
         "size": 1},
        {"mediaType": "application/vnd.oci.image.layer.v1.tar",
         "digest": "sha256:ec4b8955958665577945c89419d1af06b5f7636b4ac3da7f12184802ad867736",
         "size": 7023},
        {"mediaType": "application/vnd.oci.image.layer.v1.tar",
         "digest": "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0",
         "size": 1}
      ]
    }"""
    parsed = parse(payload, OCI_MANIFEST)
    assert len(parsed.layers) == 3
    assert parsed.blobs == (LAYER3, LAYER1)


def test_unknown_members_and_media_types_are_accepted() -> None:
    payload = (
        b"""{
      "schemaVersion": 2,
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "x-future": {"anything": [1, 2.5, null, true]},
      "config": {"mediaType": "application/vnd.unknown.config.v9+cbor",
                 "digest": "sha512:"""
        + b"ab" * 64
        + b"""",
                 "size": 0, "x-extra": "kept out"},
      "layers": [
        {"mediaType": "application/vnd.unknown.layer+zstd",
         "digest": "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0",
         "size": 9223372036854775807,
         "platform": {"architecture": "amd64", "os": "linux", "x-custom": {"a": 1}}}
      ]
    }"""
    )
    parsed = parse(payload, None)
    assert parsed.config == Descriptor(
        "application/vnd.unknown.config.v9+cbor", "sha512:" + "ab" * 64, 0
    )
    assert parsed.layers[0].size == 2**63 - 1
    assert parsed.layers[0].platform == {
        "architecture": "amd64",
        "os": "linux",
        "x-custom": {"a": 1},
    }
    assert parsed.artifact_type == "application/vnd.unknown.config.v9+cbor"


def test_descriptor_to_json_carries_only_what_is_set() -> None:
    bare = Descriptor(OCI_MANIFEST, CHILD1, 7143)
    assert bare.to_json() == {"mediaType": OCI_MANIFEST, "digest": CHILD1, "size": 7143}
    full = Descriptor(
        OCI_MANIFEST,
        CHILD1,
        7143,
        artifact_type="application/vnd.example.sbom.v1",
        annotations={"k": "v"},
        platform={"architecture": "amd64", "os": "linux", "os.features": ["win32k"]},
        urls=("https://example.com/a",),
    )
    out = full.to_json()
    assert out == {
        "mediaType": OCI_MANIFEST,
        "digest": CHILD1,
        "size": 7143,
        "urls": ["https://example.com/a"],
        "annotations": {"k": "v"},
        "platform": {"architecture": "amd64", "os": "linux", "os.features": ["win32k"]},
        "artifactType": "application/vnd.example.sbom.v1",
    }
    # The JSON is a copy: changing it leaves the descriptor alone.
    out["platform"]["os.features"].append("changed")
    out["annotations"]["k"] = "changed"
    assert full.platform == {"architecture": "amd64", "os": "linux", "os.features": ["win32k"]}
    assert full.annotations == {"k": "v"}


def test_parsed_manifest_is_frozen() -> None:
    parsed = parse(OCI_IMAGE, OCI_MANIFEST)
    assert isinstance(parsed, ParsedManifest)
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.media_type = OCI_INDEX  # type: ignore[misc]
