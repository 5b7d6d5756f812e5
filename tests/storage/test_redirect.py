from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.storage.filesystem import FilesystemDriver
from dockyard.storage.redirect import StorageMiddlewareError, validate, wrap


async def test_redirect_answers_the_base_url_and_delegates_the_rest(tmp_path: Path) -> None:
    driver = wrap(
        FilesystemDriver(str(tmp_path)),
        [{"name": "redirect", "options": {"baseurl": "https://cdn.example.test/reg/"}}],
    )
    await driver.put_content("blobs/sha256/ab/abc/data", b"bytes")
    assert await driver.get_content("blobs/sha256/ab/abc/data") == b"bytes"
    assert (
        await driver.redirect_url("blobs/sha256/ab/abc/data")
        == "https://cdn.example.test/reg/blobs/sha256/ab/abc/data"
    )
    assert await driver.redirect_url("blobs/x", "PUT") is None
    # Never zero-copy from disk: the base URL serves the bytes.
    assert driver.local_path("blobs/sha256/ab/abc/data") is None


async def test_disabled_entries_are_skipped(tmp_path: Path) -> None:
    base = FilesystemDriver(str(tmp_path))
    entries = [{"name": "redirect", "disabled": True, "options": {"baseurl": "https://x.test"}}]
    assert wrap(base, entries) is base


@pytest.mark.parametrize(
    ("entries", "path"),
    [
        ([{"name": "cloudfront", "options": {}}], "middleware.storage[0].name"),
        ([{"name": "redirect", "options": {}}], "middleware.storage[0].options.baseurl"),
        (
            [{"name": "redirect", "options": {"baseurl": "cdn.test"}}],
            "middleware.storage[0].options.baseurl",
        ),
        (["redirect"], "middleware.storage[0]"),
        ({"name": "redirect"}, "middleware.storage"),
    ],
)
def test_bad_entries_name_the_key(entries: object, path: str) -> None:
    with pytest.raises(StorageMiddlewareError) as caught:
        validate(entries)
    assert caught.value.path == path
