"""``auth.htpasswd``: parsing the file, checking passwords, reloading on change, creating a
missing file, and the Basic challenge."""

from __future__ import annotations

import base64
import logging
import os
import re
import threading
import time
from pathlib import Path

import bcrypt
import pytest

from dockyard.auth.base import Access, RequestInfo
from dockyard.auth.htpasswd import (
    DEFAULT_USER,
    HtpasswdAccess,
    HtpasswdError,
    HtpasswdFile,
    parse_htpasswd,
    provision,
)
from dockyard.auth.options import AuthConfigError
from dockyard.errors import Unauthorized

COST = 4  # the cheapest bcrypt: these tests check logic, not cost


def entry(user: str, password: str, cost: int = COST) -> str:
    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()}"


def request(authorization: str | None) -> RequestInfo:
    headers = {} if authorization is None else {"authorization": authorization}
    return RequestInfo(headers=headers, client="127.0.0.1")


def basic(user: str, password: str) -> RequestInfo:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return request(f"Basic {token}")


def rewrite(path: Path, text: str) -> None:
    """Replace the content (or create the file); the modification time moves on by a second,
    so that the change is seen even within one tick of the clock."""
    before = path.stat().st_mtime_ns if path.exists() else time.time_ns()
    path.write_text(text)
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


def append(path: Path, line: str) -> None:
    rewrite(path, path.read_text() + line + "\n")


def text_of(path: Path) -> str:
    return path.read_text()


def remove(path: Path) -> None:
    path.unlink()


@pytest.fixture
def htfile(tmp_path: Path) -> Path:
    path = tmp_path / "htpasswd"
    path.write_text(entry("alice", "wonderland") + "\n" + entry("bob", "builder") + "\n")
    return path


@pytest.fixture
def controller(htfile: Path) -> HtpasswdAccess:
    return HtpasswdAccess.from_options({"realm": "Dockyard Realm", "path": str(htfile)})


# Parsing ----------------------------------------------------------------------------------------


def test_parse_skips_comments_and_blank_lines_and_trims() -> None:
    alice = entry("alice", "pw")
    table = parse_htpasswd(f"# users\n\n   \n  {alice}  \n\t# indented comment\n")
    assert dict(table.entries) == {"alice": alice.split(":", 1)[1].encode()}
    assert table.ignored == ()


def test_parse_later_entry_wins() -> None:
    first, second = entry("alice", "one"), entry("alice", "two")
    table = parse_htpasswd(f"{first}\n{second}\n")
    assert table.entries["alice"] == second.split(":", 1)[1].encode()


def test_parse_ignores_hashes_that_are_not_bcrypt() -> None:
    text = "\n".join(
        [
            "md5:$apr1$xyz$0123456789abcdefghijkl",
            "sha:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
            "crypt:rqXexS6ZhobKA",
            "plain:password",
            "badcost:$2y$99$" + "a" * 53,
            "short:$2y$10$tooshort",
            entry("alice", "pw"),
        ]
    )
    table = parse_htpasswd(text)
    assert list(table.entries) == ["alice"]
    assert set(table.ignored) == {"md5", "sha", "crypt", "plain", "badcost", "short"}


def test_parse_accepts_2a_2b_2y() -> None:
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(COST)).decode()
    text = "\n".join(f"u{v}:{hashed.replace('$2b$', f'${v}$')}" for v in ("2a", "2b", "2y"))
    assert sorted(parse_htpasswd(text).entries) == ["u2a", "u2b", "u2y"]


def test_parse_refuses_a_line_without_colon_naming_its_number_not_its_content() -> None:
    with pytest.raises(HtpasswdError, match="line 3") as info:
        parse_htpasswd(f"# c\n{entry('a', 'p')}\nsecret-looking-line\n")
    assert "secret-looking-line" not in str(info.value)
    with pytest.raises(HtpasswdError, match="line 1"):
        parse_htpasswd(":hash-without-user\n")


def test_table_cost_is_the_most_common_cost() -> None:
    text = "\n".join([entry("a", "p", 4), entry("b", "p", 5), entry("c", "p", 5)])
    assert parse_htpasswd(text).cost == 5
    assert parse_htpasswd("").cost == 10


# Checking credentials ---------------------------------------------------------------------------


async def test_no_credentials_gets_the_basic_challenge(controller: HtpasswdAccess) -> None:
    with pytest.raises(Unauthorized) as info:
        await controller.authorize(request(None), [Access.repository("a/b", "pull")])
    error = info.value
    assert error.status == 401
    assert error.headers == {"WWW-Authenticate": 'Basic realm="Dockyard Realm"'}
    assert error.envelope()["errors"][0]["code"] == "UNAUTHORIZED"
    assert error.envelope()["errors"][0]["detail"] == [
        {"Type": "repository", "Name": "a/b", "Action": "pull"}
    ]


async def test_right_password_grants_everything(controller: HtpasswdAccess) -> None:
    grant = await controller.authorize(basic("alice", "wonderland"), [])
    assert grant.subject == "alice"
    assert grant.allows(Access.repository("any/repo", "pull", "push", "delete"))
    assert grant.allows(Access.catalog())
    # Again, from what was remembered.
    again = await controller.authorize(basic("bob", "builder"), [Access.catalog()])
    assert again.subject == "bob"


@pytest.mark.parametrize(
    ("user", "password"),
    [("alice", "wrong"), ("alice", ""), ("nobody", "wonderland"), ("ALICE", "wonderland")],
)
async def test_wrong_password_and_unknown_user_get_the_same_answer(
    controller: HtpasswdAccess, user: str, password: str
) -> None:
    with pytest.raises(Unauthorized) as info:
        await controller.authorize(basic(user, password), [])
    assert info.value.headers == {"WWW-Authenticate": 'Basic realm="Dockyard Realm"'}
    assert info.value.envelope() == {
        "errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]
    }


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic",
        "Basic ###",
        "Basic " + base64.b64encode(b"alice").decode(),
        "Basic " + base64.b64encode(b"\xff:\xfe").decode(),
        "Bearer abc",
        "Digest username=alice",
        "alice:wonderland",
        "Basic " + "QQ==" * 20_000,
    ],
)
async def test_malformed_headers_get_the_challenge(
    controller: HtpasswdAccess, authorization: str
) -> None:
    with pytest.raises(Unauthorized):
        await controller.authorize(request(authorization), [])


async def test_unknown_user_costs_a_bcrypt_comparison(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text(entry("alice", "wonderland", cost=12) + "\n")
    controller = HtpasswdAccess.from_options({"realm": "r", "path": str(path)})
    # The first unknown user builds the dummy hash; time the second.
    with pytest.raises(Unauthorized):
        await controller.authorize(basic("nobody", "x"), [])
    timings = {}
    for user in ("alice", "nobody"):
        start = time.perf_counter()
        with pytest.raises(Unauthorized):
            await controller.authorize(basic(user, "wrong"), [])
        timings[user] = time.perf_counter() - start
    # A cost-12 comparison takes tens of milliseconds on any machine; both pay it.
    assert timings["nobody"] > timings["alice"] / 3, timings
    assert timings["nobody"] > 0.02, timings


async def test_long_passwords_are_cut_at_72_bytes_as_bcrypt_does(tmp_path: Path) -> None:
    password = "x" * 72
    path = tmp_path / "htpasswd"
    path.write_text(entry("alice", password) + "\n")
    controller = HtpasswdAccess.from_options({"realm": "r", "path": str(path)})
    assert (await controller.authorize(basic("alice", password + "tail"), [])).subject == "alice"


# Reloading -------------------------------------------------------------------------------------


async def test_edited_file_is_read_again(htfile: Path, controller: HtpasswdAccess) -> None:
    with pytest.raises(Unauthorized):
        await controller.authorize(basic("carol", "singer"), [])
    append(htfile, entry("carol", "singer"))
    assert (await controller.authorize(basic("carol", "singer"), [])).subject == "carol"


async def test_changed_password_is_not_accepted_from_memory(
    htfile: Path, controller: HtpasswdAccess
) -> None:
    assert (await controller.authorize(basic("alice", "wonderland"), [])).subject == "alice"
    rewrite(htfile, entry("alice", "looking-glass") + "\n")
    with pytest.raises(Unauthorized):
        await controller.authorize(basic("alice", "wonderland"), [])
    grant = await controller.authorize(basic("alice", "looking-glass"), [])
    assert grant.subject == "alice"


async def test_removed_user_is_refused(htfile: Path, controller: HtpasswdAccess) -> None:
    assert (await controller.authorize(basic("bob", "builder"), [])).subject == "bob"
    rewrite(htfile, entry("alice", "wonderland") + "\n")
    with pytest.raises(Unauthorized):
        await controller.authorize(basic("bob", "builder"), [])


async def test_file_replaced_by_rename_is_read_again(
    htfile: Path, controller: HtpasswdAccess, tmp_path: Path
) -> None:
    replacement = tmp_path / "htpasswd.new"
    replacement.write_text(entry("dave", "diver") + "\n")
    os.replace(replacement, htfile)
    assert (await controller.authorize(basic("dave", "diver"), [])).subject == "dave"


async def test_broken_or_missing_file_lets_nobody_in_until_fixed(
    htfile: Path, controller: HtpasswdAccess, caplog: pytest.LogCaptureFixture
) -> None:
    good = text_of(htfile)
    append(htfile, "no colon here")
    with caplog.at_level(logging.ERROR), pytest.raises(Unauthorized):
        await controller.authorize(basic("alice", "wonderland"), [])
    assert "line 3" in caplog.text
    remove(htfile)
    with pytest.raises(Unauthorized):
        await controller.authorize(basic("alice", "wonderland"), [])
    rewrite(htfile, good)
    assert (await controller.authorize(basic("alice", "wonderland"), [])).subject == "alice"


def test_file_is_not_read_again_when_unchanged(htfile: Path) -> None:
    file = HtpasswdFile(htfile)
    first = file.load()
    assert file.current() is first
    rewrite(htfile, htfile.read_text())
    assert file.current() is not first


# Start-up ---------------------------------------------------------------------------------------


def test_missing_file_is_created_with_a_default_user(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "auth" / "htpasswd"
    with caplog.at_level(logging.WARNING):
        HtpasswdAccess.from_options({"realm": "r", "path": str(path)})
    match = re.search(rf"user '{DEFAULT_USER}' and password (\S+)", caplog.text)
    assert match, caplog.text
    table = parse_htpasswd(path.read_text())
    assert list(table.entries) == [DEFAULT_USER]
    assert bcrypt.checkpw(match[1].encode(), table.entries[DEFAULT_USER])
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["htpasswd"]


def test_provision_leaves_an_existing_file_alone(htfile: Path) -> None:
    before = htfile.read_text()
    assert provision(htfile) is None
    assert htfile.read_text() == before


def test_provision_races_have_one_winner(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    results: list[str | None] = []
    threads = [threading.Thread(target=lambda: results.append(provision(path))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    table = parse_htpasswd(path.read_text())
    assert bcrypt.checkpw(winners[0].encode(), table.entries[DEFAULT_USER])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"path": "/x"}, "auth.htpasswd.realm: required"),
        ({"realm": "r"}, "auth.htpasswd.path: required"),
        ({"realm": 5, "path": "/x"}, "auth.htpasswd.realm: must be a string"),
        ({"realm": "r", "path": "/x", "extra": 1}, "auth.htpasswd.extra: unknown parameter"),
    ],
)
def test_bad_parameters_are_refused(params: dict[str, object], message: str) -> None:
    with pytest.raises(AuthConfigError, match=re.escape(message)):
        HtpasswdAccess.from_options(params)


def test_invalid_file_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text("alice\n")
    with pytest.raises(AuthConfigError, match=r"auth\.htpasswd\.path: .*line 1"):
        HtpasswdAccess.from_options({"realm": "r", "path": str(path)})


def test_unreadable_path_refuses_to_start(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(AuthConfigError, match=r"auth\.htpasswd\.path: cannot read"):
        HtpasswdAccess.from_options({"realm": "r", "path": str(tmp_path / "dir")})
