"""`receipts backup`: create (dump + manifest, image copy, pruning), verify (restore and compare),
prune. Scheduled by the systemd timer in infra/backup/systemd/ (or cron); see infra/RUNBOOK.md."""

from __future__ import annotations

from pathlib import Path

import click

from infra.backup.retention import Policy, SystemClock, prune

_DB = click.option(
    "--database-url",
    envvar="RM_DATABASE_URL",
    required=True,
    help="The server's database (postgresql+psycopg2://user@host/db) [RM_DATABASE_URL].",
)
_DEST = click.option(
    "--dest",
    envvar="RM_BACKUP_DIR",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the dumps [RM_BACKUP_DIR].",
)
_DAILY = click.option("--keep-daily", default=30, show_default=True, help="Days with one kept.")
_MONTHLY = click.option(
    "--keep-monthly", default=12, show_default=True, help="Months with one kept."
)


@click.group("backup")
def backup() -> None:
    """Database dumps and image copies, their retention and their verification."""


@backup.command("create")
@_DB
@_DEST
@click.option(
    "--images",
    envvar="RM_IMAGE_STORE__ROOT",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The local image store to copy [RM_IMAGE_STORE__ROOT].",
)
@click.option(
    "--images-dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where image copies go (default: DEST/images).",
)
@_DAILY
@_MONTHLY
@click.option("--no-prune", is_flag=True, help="Keep every older dump.")
def create(
    *,
    database_url: str,
    dest: Path,
    images: Path | None,
    images_dest: Path | None,
    keep_daily: int,
    keep_monthly: int,
    no_prune: bool,
) -> None:
    """Dump the database (custom format, with a manifest), copy new images, prune old dumps."""
    from infra.backup.images import copy_images
    from infra.backup.postgres import BackupError, create_dump

    clock = SystemClock()
    try:
        dump = create_dump(database_url, dest, clock.now())
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"dump {dump}")
    if images is not None:
        report = copy_images(images, images_dest or dest / "images")
        click.echo(f"images: {report.copied} copied, {report.unchanged} already there")
    if not no_prune:
        for path in prune(dest, clock, Policy(daily=keep_daily, monthly=keep_monthly)):
            click.echo(f"pruned {path.name}")


@backup.command("verify")
@click.argument("dump", required=False, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--dest",
    envvar="RM_BACKUP_DIR",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the dumps, when DUMP is not given [RM_BACKUP_DIR].",
)
@_DB
@click.option(
    "--scratch-url",
    envvar="RM_BACKUP_SCRATCH_URL",
    default=None,
    help="Server to restore on (default: the database URL's server) [RM_BACKUP_SCRATCH_URL].",
)
@click.option("--live", is_flag=True, help="Also compare with the live database as it is now.")
@click.option("--keep-scratch", is_flag=True, help="Leave the restored database for inspection.")
def verify(
    *,
    dump: Path | None,
    dest: Path | None,
    database_url: str,
    scratch_url: str | None,
    live: bool,
    keep_scratch: bool,
) -> None:
    """Restore DUMP (default: the newest in DEST) into a scratch database and compare it."""
    from infra.backup.postgres import BackupError, latest_dump, verify_dump

    try:
        if dump is not None:
            chosen = dump
        elif dest is not None:
            chosen = latest_dump(dest)
        else:
            raise click.UsageError("give a DUMP, or --dest (RM_BACKUP_DIR) to take its newest")
        report = verify_dump(
            chosen,
            scratch_url or database_url,
            live_source_url=database_url if live else None,
            keep_scratch=keep_scratch,
        )
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    for problem in report.problems:
        click.echo(f"MISMATCH {problem}", err=True)
    if not report.ok:
        raise click.ClickException(f"{chosen.name} does not restore to its source")
    kept = f" (kept as {report.scratch_database})" if keep_scratch else ""
    click.echo(
        f"OK {chosen.name}: {len(report.restored)} tables, {report.rows} rows restored "
        f"and matching{kept}"
    )


@backup.command("prune")
@_DEST
@_DAILY
@_MONTHLY
@click.option("--dry-run", is_flag=True, help="Say what would go, delete nothing.")
def prune_command(*, dest: Path, keep_daily: int, keep_monthly: int, dry_run: bool) -> None:
    """Delete dumps outside the retention policy (30 daily, 12 monthly by default)."""
    policy = Policy(daily=keep_daily, monthly=keep_monthly)
    for path in prune(dest, SystemClock(), policy, dry_run=dry_run):
        click.echo(f"{'would prune' if dry_run else 'pruned'} {path.name}")
