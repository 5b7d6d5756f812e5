"""The ``dockyard`` command."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click

from dockyard import __version__
from dockyard.config import ConfigError, read_config
from dockyard.identity.cli import config_option as _config_option
from dockyard.identity.cli import register as register_identity_commands
from dockyard.lifecycle.cli import register as register_lifecycle_commands

__all__ = ["main"]

CONFIG_ERROR_EXIT = 2
SERVE_ERROR_EXIT = 1


def _fail(error: ConfigError) -> None:
    click.echo(str(error), err=True)
    sys.exit(CONFIG_ERROR_EXIT)


def _warn(warnings: tuple[str, ...] | list[str]) -> None:
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__, "--version", prog_name="dockyard", message="%(prog)s %(version)s"
)
def main() -> None:
    """Dockyard: a container image registry (OCI Distribution, Docker Registry HTTP API V2)."""


@main.command("check-config")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option(
    "--offline", is_flag=True, help="Check the file only: do not contact the stores it names."
)
def check_config(config: str, offline: bool) -> None:
    """Validate CONFIG, a Distribution-style config.yml, with REGISTRY_* overrides applied,
    then ask the PostgreSQL database and the S3 bucket it names whether its credentials,
    database and bucket are right (a store out of reach is a warning).

    Prints "ok", or each offending key path and exits with status 2.
    """
    from dockyard.server import preflight
    from dockyard.store_checks import probe_database, probe_storage

    try:
        loaded = read_config(config, os.environ)
        warnings = preflight(loaded.config)
    except ConfigError as error:
        _fail(error)
    _warn(loaded.warnings)
    _warn(warnings)
    if not offline:
        problems = []
        for probe in (probe_database, probe_storage):
            problem, unavailable = probe(loaded.config)
            if problem is not None:
                problems.append(problem)
            if unavailable is not None:
                _warn([f"{unavailable}: not checked"])
        if problems:
            _fail(ConfigError(problems))
    click.echo("ok")


@main.command()
@click.argument("config", required=False, envvar="DOCKYARD_CONFIG", type=click.Path(dir_okay=False))
def serve(config: str | None) -> None:
    """Run the registry with CONFIG (default: $DOCKYARD_CONFIG, else built-in defaults:
    listen on :5000, data under $XDG_DATA_HOME/dockyard)."""
    from dockyard.server import ServeError
    from dockyard.server import serve as run

    try:
        loaded = read_config(config or None, os.environ)
    except ConfigError as error:
        _fail(error)
    _warn(loaded.warnings)
    try:
        run(loaded.config, config or None)
    except ConfigError as error:
        _fail(error)
    except ServeError as error:
        click.echo(f"dockyard: {error}", err=True)
        sys.exit(SERVE_ERROR_EXIT)


@main.command()
@click.argument("config", required=False, envvar="DOCKYARD_CONFIG", type=click.Path(dir_okay=False))
@click.option("--check", is_flag=True, help="Only report; exit 1 if the schema is not at head.")
def migrate(config: str | None, check: bool) -> None:
    """Bring the metadata database named by CONFIG (database.url) to the current schema.

    `serve` does this at startup too; run it as a separate step when replicas should start
    only on an up-to-date schema.
    """
    import asyncio

    from dockyard.metadata import migrate as migrations

    try:
        loaded = read_config(config or None, os.environ)
    except ConfigError as error:
        _fail(error)
    _warn(loaded.warnings)
    url = loaded.config.database_url
    head = migrations.head_revision()
    try:
        current = asyncio.run(migrations.current_revision(url))
        if check:
            click.echo(f"schema at {current or 'nothing'}; head is {head}")
            sys.exit(0 if current == head else 1)
        if current != head:
            asyncio.run(migrations.upgrade(url))
    except Exception as error:  # the message only: the URL may hold a password
        click.echo(f"dockyard: database: {type(error).__name__}: {error}", err=True)
        sys.exit(SERVE_ERROR_EXIT)
    click.echo(
        f"schema at {head}" if current == head else f"migrated {current or 'nothing'} -> {head}"
    )


@main.command()
@click.argument("config", required=False, envvar="DOCKYARD_CONFIG", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Only print what would be removed.")
@click.option("--delete-untagged", is_flag=True, help="Also remove untagged manifests.")
@click.option(
    "--rescan",
    is_flag=True,
    help="First make every stored blob and manifest a candidate once (storage adopted from "
    "elsewhere, lost queues); queues even in a dry run.",
)
def gc(config: str | None, dry_run: bool, delete_untagged: bool, rescan: bool) -> None:
    """Collect garbage once: blobs nothing references or links (after gc.grace), and with
    --delete-untagged (or gc.deleteuntagged) manifests no tag or index needs. A dry run
    follows chains (an untagged index, its children, their blobs) and changes nothing."""
    import asyncio

    from dockyard.maintenance import collect_garbage

    try:
        loaded = read_config(config or None, os.environ)
    except ConfigError as error:
        _fail(error)
    _warn(loaded.warnings)
    untagged = True if delete_untagged else None
    try:
        report = asyncio.run(collect_garbage(loaded.config, dry_run, untagged, rescan=rescan))
    except Exception as error:  # the message only: the URL may hold a password
        click.echo(f"dockyard: gc: {type(error).__name__}: {error}", err=True)
        sys.exit(SERVE_ERROR_EXIT)
    verb = "would remove" if dry_run else "removed"
    if report.rescan is not None:
        click.echo(
            f"rescan queued {report.rescan.blobs} blob(s), {report.rescan.manifests} "
            f"manifest(s), {report.rescan.stored} stored blob(s) without a row"
        )
    for repository, digest in report.manifests:
        click.echo(f"manifest {repository}@{digest}")
    for digest in report.blobs:
        click.echo(f"blob {digest} {report.sizes.get(digest, 0)}")
    click.echo(
        f"{verb} {len(report.manifests)} manifest(s), {len(report.blobs)} blob(s), "
        f"{report.bytes_freed} byte(s)"
    )


@main.group()
def user() -> None:
    """Manage the accounts of auth.builtin, in the database the config names."""


def _database_url(config: str | None) -> str:
    try:
        loaded = read_config(config or None, os.environ)
    except ConfigError as error:
        _fail(error)
    _warn(loaded.warnings)
    if not loaded.config.database.url:
        # The default SQLite database lives in the data directory, which may not exist yet.
        os.makedirs(loaded.config.data_directory, exist_ok=True)
    return loaded.config.database_url


def _database_failed(error: Exception) -> NoReturn:
    # The message only: the URL may hold a password.
    click.echo(f"dockyard: database: {type(error).__name__}: {error}", err=True)
    sys.exit(SERVE_ERROR_EXIT)


@user.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Make the user a site administrator.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@_config_option
def user_add(name: str, admin: bool, password_stdin: bool, config: str | None) -> None:
    """Create the user NAME (asks for its password unless --password-stdin)."""
    import asyncio

    from dockyard.identity.base import IdentityError
    from dockyard.identity.commands import add_user

    url = _database_url(config)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        click.echo("dockyard: the password must not be empty", err=True)
        sys.exit(SERVE_ERROR_EXIT)
    try:
        created = asyncio.run(add_user(url, name, password, is_admin=admin))
    except IdentityError as error:
        click.echo(f"dockyard: {error}", err=True)
        sys.exit(SERVE_ERROR_EXIT)
    except Exception as error:
        _database_failed(error)
    click.echo(f"created {'admin ' if created.is_admin else ''}user {created.name}")


@user.command("list")
@_config_option
def user_list(config: str | None) -> None:
    """List the users: name, admin, disabled, created."""
    import asyncio

    from dockyard.identity.commands import list_users

    url = _database_url(config)
    try:
        users = asyncio.run(list_users(url))
    except Exception as error:
        _database_failed(error)
    for account in users:
        flags = ",".join(
            flag for flag, on in (("admin", account.is_admin), ("disabled", account.disabled)) if on
        )
        click.echo(f"{account.name}\t{flags or '-'}\t{account.created_at.isoformat()}")


register_identity_commands(main)
register_lifecycle_commands(main)
