"""The UI's pure parts: sessions, Markdown rendering, what a tag page reads of an image."""

from __future__ import annotations

import json
import time
from html.parser import HTMLParser

import pytest

from dockyard.ui.images import parse_config, parse_manifest, with_commands
from dockyard.ui.markdown import render
from dockyard.ui.sessions import Session, SessionCodec, session_secret
from dockyard.ui.templates import human_size, short_digest

SAFE_TAGS = {"p", "a", "img", "em", "strong", "code", "pre"}


class _Elements(HTMLParser):
    """The elements and attributes of an HTML fragment, as a browser would parse them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes += [(tag, name, value or "") for name, value in attrs]


def test_a_session_survives_only_its_own_key_and_lifetime() -> None:
    secret = session_secret(None, "http secret", b"key bytes")
    assert secret == session_secret("", "http secret", None)  # the same in every process
    assert secret != session_secret("ui secret", "http secret")
    codec = SessionCodec(secret, 3600)
    session = Session.new("alice")
    cookie = codec.dump(session)
    assert codec.load(cookie) == session
    assert SessionCodec(session_secret("other"), 3600).load(cookie) is None
    # Not the last character: its low bits are base64 padding that decoding drops.
    flipped = "A" if cookie[-5] != "A" else "B"
    assert codec.load(cookie[:-5] + flipped + cookie[-4:]) is None
    for junk in (None, "", "x" * 5000, "not.a.cookie"):
        assert codec.load(junk) is None
    short = SessionCodec(secret, 1)
    old = short.dump(session)
    time.sleep(2.1)
    assert short.load(old) is None
    assert Session.new("alice").csrf != session.csrf


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "![x](javascript:alert(1))",
        '<a href="javascript:alert(1)">x</a>',
        "<iframe src=//evil></iframe>",
        '<svg onload="alert(1)">',
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        '<div style="background:url(javascript:alert(1))">',
    ],
)
def test_markdown_is_rendered_inert(hostile: str) -> None:
    found = _Elements()
    found.feed(str(render(f"text {hostile} more")))
    assert found.tags <= SAFE_TAGS, found.tags
    for tag, name, value in found.attributes:
        assert not name.startswith("on"), (tag, name)
        assert name != "style", tag
        if name in ("href", "src"):
            assert value.split(":")[0].lower() in ("http", "https", "mailto"), value


def test_markdown_keeps_what_a_readme_needs() -> None:
    html = str(
        render(
            "# T\n\n*e* **s** `c`\n\n```\nblock\n```\n\n- a\n\n| h |\n|---|\n| d |\n\n[l](https://x.org)"
        )
    )
    expected = ["<h1>T</h1>", "<em>e</em>", "<strong>s</strong>", "<code>c</code>", "<pre>"]
    expected += [
        "<li>a</li>",
        "<table>",
        'href="https://x.org"',
        'rel="noopener noreferrer nofollow"',
    ]
    for part in expected:
        assert part in html, html


def test_layers_get_the_commands_that_made_them() -> None:
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"digest": "sha256:c", "size": 10},
            "layers": [{"digest": "sha256:a", "size": 100}, {"digest": "sha256:b", "size": 5}],
        }
    ).encode()
    config = json.dumps(
        {
            "os": "linux",
            "architecture": "arm64",
            "variant": "v8",
            "config": {"Env": ["A=1"], "Entrypoint": "/bin/sh", "Labels": {"k": "v", "n": 1}},
            "history": [
                {"created_by": "ADD rootfs"},
                {"created_by": "ENV A=1", "empty_layer": True},
                {"created_by": "RUN make"},
            ],
        }
    ).encode()
    view = parse_manifest("ignored", manifest)
    image = parse_config(config)
    assert (view.size, view.is_index, image.platform) == (115, False, "linux/arm64/v8")
    assert [layer.created_by for layer in with_commands(view.layers, image)] == [
        "ADD rootfs",
        "RUN make",
    ]
    assert image.entrypoint == ("/bin/sh",)
    assert dict(image.labels) == {"k": "v"}  # a label that is no string is left out


@pytest.mark.parametrize(
    "junk", [b"", b"not json", b"[]", b'{"layers": "x", "config": 3}', b"\xff"]
)
def test_malformed_documents_give_empty_views(junk: bytes) -> None:
    view = parse_manifest("application/vnd.oci.image.manifest.v1+json", junk)
    assert (view.layers, view.children, view.config_digest) == ((), (), None)
    image = parse_config(junk)
    assert (image.history, image.env, image.platform) == ((), (), "")
    assert with_commands(view.layers, image) == []


def test_formatting() -> None:
    assert [human_size(n) for n in (0, 1023, 1024, 5 * 1024**3)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "5.0 GiB",
    ]
    assert short_digest("sha256:" + "a" * 64) == "sha256:aaaaaaaaaaaa"
