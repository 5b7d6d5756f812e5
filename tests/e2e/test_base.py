"""end-1: the API version check."""

from __future__ import annotations

from .registry import RegistryClient


def test_version_check_answers_200_with_api_version_header(client: RegistryClient) -> None:
    response = client.request("GET", "/v2/")
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_version_check_head(client: RegistryClient) -> None:
    response = client.request("HEAD", "/v2/")
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_version_check_without_trailing_slash(client: RegistryClient) -> None:
    response = client.request("GET", "/v2", follow_redirects=True)
    assert response.status_code == 200
