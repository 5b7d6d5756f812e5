"""end-8a/8b: listing tags, with pagination."""

from __future__ import annotations

import re

import pytest

from .conftest import RegistryServer
from .registry import RegistryClient, assert_error

# Lower case only, where byte order and case-insensitive order (both allowed) agree.
TAGS = sorted(["latest", "v1", "v1.0", "v10", "v2", "v3", "a_b", "a-b", "0", "z.z", "_x"])


@pytest.fixture(scope="module")
def tagged(registry: RegistryServer) -> str:
    repo = "e2e/tags/listing"
    with registry.client() as client:
        image = client.push_image(repo, TAGS[0])
        for tag in TAGS[1:]:
            client.push_manifest(repo, tag, image.body)
    return repo


def _next_link(link: str) -> str:
    match = re.fullmatch(r'<([^>]+)>;\s*rel="?next"?', link.strip())
    assert match, f"malformed Link header: {link!r}"
    return match.group(1)


def test_full_list_is_sorted(client: RegistryClient, tagged: str) -> None:
    response = client.request("GET", f"/v2/{tagged}/tags/list")
    assert response.status_code == 200
    assert response.json() == {"name": tagged, "tags": TAGS}
    assert "Link" not in response.headers


@pytest.mark.parametrize("n", [1, 2, 3, 5, len(TAGS) - 1])
def test_pages_follow_link_header(client: RegistryClient, tagged: str, n: int) -> None:
    url = f"/v2/{tagged}/tags/list?n={n}"
    seen: list[str] = []
    pages = 0
    while True:
        response = client.request("GET", client.resolve(url))
        assert response.status_code == 200
        page = response.json()["tags"]
        assert page == TAGS[len(seen) : len(seen) + n]
        seen += page
        pages += 1
        if "Link" not in response.headers:
            break
        url = _next_link(response.headers["Link"])
        assert f"n={n}" in url
        assert f"last={page[-1]}" in url
        assert pages <= len(TAGS)
    assert seen == TAGS


def test_last_without_n(client: RegistryClient, tagged: str) -> None:
    response = client.request("GET", f"/v2/{tagged}/tags/list", params={"last": "v1"})
    assert response.status_code == 200
    assert response.json()["tags"] == TAGS[TAGS.index("v1") + 1 :]


def test_last_between_tags(client: RegistryClient, tagged: str) -> None:
    # `last` need not be an existing tag: results start strictly after it.
    response = client.request("GET", f"/v2/{tagged}/tags/list", params={"n": "2", "last": "v1.5"})
    assert response.json()["tags"] == ["v10", "v2"]


def test_last_after_everything(client: RegistryClient, tagged: str) -> None:
    response = client.request("GET", f"/v2/{tagged}/tags/list", params={"n": "3", "last": "zzz"})
    assert response.status_code == 200
    assert response.json()["tags"] == []
    assert "Link" not in response.headers


def test_n_zero_is_empty_without_link(client: RegistryClient, tagged: str) -> None:
    response = client.request("GET", f"/v2/{tagged}/tags/list?n=0")
    assert response.status_code == 200
    assert response.json()["tags"] == []
    assert "Link" not in response.headers


def test_n_larger_than_list(client: RegistryClient, tagged: str) -> None:
    response = client.request("GET", f"/v2/{tagged}/tags/list?n=1000")
    assert response.status_code == 200
    assert response.json()["tags"] == TAGS
    assert "Link" not in response.headers


def test_n_equal_to_list(client: RegistryClient, tagged: str) -> None:
    response = client.request("GET", f"/v2/{tagged}/tags/list?n={len(TAGS)}")
    assert response.json()["tags"] == TAGS
    if "Link" in response.headers:
        # A registry may not know there is nothing more; the next page is then empty.
        follow = client.request("GET", client.resolve(_next_link(response.headers["Link"])))
        assert follow.json()["tags"] == []


@pytest.mark.parametrize("n", ["-1", "abc", "1.5", "0x10", "1e3", "9 9", "1_0"])
def test_bad_n_is_400(client: RegistryClient, tagged: str, n: str) -> None:
    response = client.request("GET", f"/v2/{tagged}/tags/list?n={n}")
    assert_error(response, 400, "PAGINATION_NUMBER_INVALID")


def test_huge_n_is_400(client: RegistryClient, tagged: str) -> None:
    response = client.request("GET", f"/v2/{tagged}/tags/list?n={10**30}")
    assert_error(response, 400, "PAGINATION_NUMBER_INVALID")


def test_unknown_repository_is_404(client: RegistryClient) -> None:
    response = client.request("GET", "/v2/e2e/tags/never-pushed/tags/list")
    assert_error(response, 404, "NAME_UNKNOWN")


def test_tags_follow_pushes_and_deletes(client: RegistryClient, repo: str) -> None:
    image = client.push_image(repo, "b")
    client.push_manifest(repo, "a", image.body)
    assert client.request("GET", f"/v2/{repo}/tags/list").json()["tags"] == ["a", "b"]
    assert client.request("DELETE", f"/v2/{repo}/manifests/a").status_code == 202
    assert client.request("GET", f"/v2/{repo}/tags/list").json()["tags"] == ["b"]


def test_untagged_manifest_is_not_listed(client: RegistryClient, repo: str) -> None:
    client.push_image(repo, "tagged")
    client.push_image(repo)  # by digest only
    assert client.request("GET", f"/v2/{repo}/tags/list").json()["tags"] == ["tagged"]


def test_mixed_case_tags_in_an_allowed_order(client: RegistryClient, repo: str) -> None:
    tags = ["b", "C", "a", "d1", "A0", "Z"]
    image = client.push_image(repo, tags[0])
    for tag in tags[1:]:
        client.push_manifest(repo, tag, image.body)
    listed = client.request("GET", f"/v2/{repo}/tags/list").json()["tags"]
    # Byte order (Go's sort.Strings) or case-insensitive order.
    assert listed in (sorted(tags), sorted(tags, key=str.lower))
    first = client.request("GET", f"/v2/{repo}/tags/list?n=3").json()["tags"]
    rest = client.request("GET", f"/v2/{repo}/tags/list", params={"last": first[-1]}).json()
    assert first + rest["tags"] == listed
