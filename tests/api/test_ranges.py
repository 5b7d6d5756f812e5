import pytest

from dockyard.api.ranges import parse_range
from dockyard.errors import RangeInvalid


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", [(0, 9)]),
        ("bytes=10-", [(10, 99)]),
        ("bytes=-5", [(95, 99)]),
        ("bytes=-500", [(0, 99)]),
        ("bytes=90-200", [(90, 99)]),
        ("bytes=0-1,4-5", [(0, 1), (4, 5)]),
        ("bytes=4-5,0-1", [(0, 1), (4, 5)]),
        ("bytes=0-5,3-8", [(0, 8)]),
        ("bytes=-5,0-0", [(0, 0), (95, 99)]),
        ("bytes=0-9,200-300", [(0, 9)]),
    ],
)
def test_satisfiable(header: str, expected: list[tuple[int, int]]) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=200-300", "bytes=-0", "bytes=100-100"])
def test_unsatisfiable(header: str) -> None:
    with pytest.raises(RangeInvalid) as caught:
        parse_range(header, 100)
    assert caught.value.headers["Content-Range"] == "bytes */100"
    assert caught.value.status == 416


@pytest.mark.parametrize("header", ["items=0-1", "bytes=", "bytes=a-b", "bytes=5-1", "bytes=-"])
def test_malformed_headers_are_ignored(header: str) -> None:
    assert parse_range(header, 100) is None


def test_too_many_ranges() -> None:
    with pytest.raises(RangeInvalid):
        parse_range("bytes=" + ",".join(f"{i}-{i}" for i in range(0, 200, 2)), 1000)
