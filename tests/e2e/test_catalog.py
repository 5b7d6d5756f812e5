"""The catalog (``GET /v2/_catalog``), with the same pagination as tag lists.

Every test in this module reads the one server seeded below, and none pushes anything else.
"""

from __future__ import annotations

import re

import pytest

from .conftest import RegistryServer
from .registry import RegistryClient, assert_error

REPOS = sorted(
    [
        "alpha",
        "alpha/one",
        "alpha/two",
        "beta",
        "b-eta",
        "b.eta",
        "b_eta",
        "gamma/x/y/z",
        "z9",
        "0zero",
    ]
)


@pytest.fixture(scope="module", autouse=True)
def _seeded(registry: RegistryServer) -> None:
    with registry.client() as client:
        for repo in REPOS:
            client.push_image(repo, "latest")


def _next_link(link: str) -> str:
    match = re.fullmatch(r'<([^>]+)>;\s*rel="?next"?', link.strip())
    assert match, f"malformed Link header: {link!r}"
    return match.group(1)


def test_full_catalog_is_sorted(client: RegistryClient) -> None:
    response = client.request("GET", "/v2/_catalog")
    assert response.status_code == 200
    assert response.json() == {"repositories": REPOS}
    assert "Link" not in response.headers


@pytest.mark.parametrize("n", [1, 3, 4, len(REPOS) - 1])
def test_pages_follow_link_header(client: RegistryClient, n: int) -> None:
    url = f"/v2/_catalog?n={n}"
    seen: list[str] = []
    while True:
        response = client.request("GET", client.resolve(url))
        assert response.status_code == 200
        page = response.json()["repositories"]
        assert page == REPOS[len(seen) : len(seen) + n]
        seen += page
        if "Link" not in response.headers:
            break
        url = _next_link(response.headers["Link"])
        assert url.startswith("/v2/_catalog?") or "/v2/_catalog?" in url
        assert len(seen) < len(REPOS) + n
    assert seen == REPOS


def test_last(client: RegistryClient) -> None:
    response = client.request("GET", "/v2/_catalog", params={"n": "2", "last": "alpha/one"})
    assert response.json()["repositories"] == ["alpha/two", "b-eta"]
    rest = client.request("GET", "/v2/_catalog", params={"last": "beta"})
    assert rest.json()["repositories"] == REPOS[REPOS.index("beta") + 1 :]


def test_n_zero_is_empty_without_link(client: RegistryClient) -> None:
    response = client.request("GET", "/v2/_catalog?n=0")
    assert response.status_code == 200
    assert response.json()["repositories"] == []
    assert "Link" not in response.headers


def test_n_larger_than_catalog(client: RegistryClient) -> None:
    response = client.request("GET", "/v2/_catalog?n=500")
    assert response.json()["repositories"] == REPOS
    assert "Link" not in response.headers


@pytest.mark.parametrize("n", ["-1", "abc", "2.0", "+-3"])
def test_bad_n_is_400(client: RegistryClient, n: str) -> None:
    assert_error(client.request("GET", f"/v2/_catalog?n={n}"), 400, "PAGINATION_NUMBER_INVALID")


def test_huge_n_is_400(client: RegistryClient) -> None:
    response = client.request("GET", f"/v2/_catalog?n={10**30}")
    assert_error(response, 400, "PAGINATION_NUMBER_INVALID")
