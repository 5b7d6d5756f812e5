import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.errors import NameInvalid, TagInvalid
from dockyard.reference import validate_name, validate_tag


@pytest.mark.parametrize(
    "name",
    ["a", "library/nginx", "a-b/c_d/e.f", "a__b", "a---b", "acme/backend/api", "0/1/2", "a" * 255],
)
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "UPPER",
        "a..b",
        "../x",
        "a/../b",
        "-a",
        "a-",
        "a_",
        "a___b",
        "/a",
        "a/",
        "a//b",
        "a b",
        "a" * 256,
        "a/" * 127 + "bb",
        "a\n",
    ],
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(NameInvalid):
        validate_name(name)


@pytest.mark.parametrize("tag", ["latest", "v1.0", "_x", "A-b_c.d", "a" * 128])
def test_valid_tags(tag: str) -> None:
    assert validate_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", ".x", "-x", "a" * 129, "a:b", "a/b", "a b", "ü"])
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(TagInvalid):
        validate_tag(tag)


@given(st.text(max_size=300))
def test_names_never_raise_anything_else(text: str) -> None:
    try:
        validate_name(text)
    except NameInvalid:
        return
    assert text == text.lower()
    assert ".." not in text
    assert len(text) <= 255
