"""`receipts backup`: create (dump + manifest, image copy, pruning), verify (restore and compare,
images included), restore-images, prune. Scheduled by the systemd timer in
infra/backup/systemd/ (or cron); see infra/RUNBOOK.md.

The image store is the server's (`RM_IMAGE_STORE__*`, local or S3), or a local folder given
with ``--images``; its copy lives in ``DEST/images`` in the store's own layout.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from infra.backup.retention import Policy, SystemClock, prune

if TYPE_CHECKING:
    from server.images.base import ListableImageStore

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


def _configured_store() -> ListableImageStore | None:
    """The server's image store when RM_IMAGE_STORE__TYPE names one (s3, or local)."""
    if not os.environ.get("RM_IMAGE_STORE__TYPE"):
        return None
    from pydantic import ValidationError

    from server.images.store import build_image_store
    from server.settings import Settings

    try:
        return build_image_store(Settings().image_store)
    except (ValidationError, OSError) as exc:
        raise click.ClickException(f"the image store settings are not usable: {exc}") from exc


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
    """Dump the database (custom format, with a manifest), copy new images, prune old dumps.

    Images: the folder ``--images`` (RM_IMAGE_STORE__ROOT), else the store RM_IMAGE_STORE__TYPE
    configures (s3: every object under the prefix), copied into DEST/images."""
    from infra.backup.images import ImageCopyError, backup_store, copy_images
    from infra.backup.postgres import BackupError, create_dump

    clock = SystemClock()
    try:
        dump = create_dump(database_url, dest, clock.now())
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"dump {dump}")
    store = None if images is not None else _configured_store()
    try:
        if images is not None:
            report = copy_images(images, images_dest or dest / "images")
        elif store is not None:
            report = backup_store(store, images_dest or dest / "images")
        else:
            report = None
    except (ImageCopyError, OSError) as exc:
        raise click.ClickException(f"image copy failed: {exc}") from exc
    if report is not None:
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
@click.option(
    "--images-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The image backup to check (default: images/ beside the dump).",
)
@click.option("--skip-images", is_flag=True, help="Check the database only.")
def verify(
    *,
    dump: Path | None,
    dest: Path | None,
    database_url: str,
    scratch_url: str | None,
    live: bool,
    keep_scratch: bool,
    images_dir: Path | None,
    skip_images: bool,
) -> None:
    """Restore DUMP (default: the newest in DEST) into a scratch database and compare it;
    every image its receipts refer to must have an intact copy in the image backup."""
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
            images_dir=None if skip_images else (images_dir or chosen.parent / "images"),
        )
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    for problem in report.problems:
        click.echo(f"MISMATCH {problem}", err=True)
    if not report.ok:
        raise click.ClickException(f"{chosen.name} does not restore to its source")
    kept = f" (kept as {report.scratch_database})" if keep_scratch else ""
    images = "" if skip_images else f", {report.images_checked} images intact"
    click.echo(
        f"OK {chosen.name}: {len(report.restored)} tables, {report.rows} rows restored "
        f"and matching{images}{kept}"
    )


@backup.command("restore-images")
@click.option(
    "--from",
    "source",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The image backup folder (DEST/images).",
)
@click.option(
    "--images",
    envvar="RM_IMAGE_STORE__ROOT",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A local image store to restore into [RM_IMAGE_STORE__ROOT]; else RM_IMAGE_STORE__*.",
)
def restore_images(*, source: Path, images: Path | None) -> None:
    """Put the images of a backup into the (empty or partial) image store, each checked
    against its sha256; images already there are left alone."""
    from infra.backup.images import ImageCopyError, restore_store
    from server.images.local import LocalImageStore, LocalImageStoreConfig

    if images is not None:
        store: ListableImageStore | None = LocalImageStore(LocalImageStoreConfig(root=images))
    else:
        store = _configured_store()
    if store is None:
        raise click.UsageError("say where to restore: --images DIR, or RM_IMAGE_STORE__TYPE=s3")
    try:
        report = restore_store(source, store)
    except (ImageCopyError, OSError) as exc:
        raise click.ClickException(f"image restore failed: {exc}") from exc
    click.echo(f"images: {report.copied} restored, {report.unchanged} already there")


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
