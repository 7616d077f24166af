"""`receipts provision`: the operator's commands for the fleet's identities and broker access.

They read the server's settings (``RM_DATABASE_URL``, ``RM_FLEET__CA_DIR``,
``RM_FLEET__BROKER_AUTH_DIR``...), migrate the database, act in one transaction and, after it
commits, mirror the registry to the broker (revocation cuts a scanner off within the reload).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from sqlalchemy.orm import Session, sessionmaker

from provisioning.bootconfig import BootConfig, BootConfigError, install_credentials
from provisioning.bootconfig import write_boot_folder as write_boot
from provisioning.ca import CaError, CertificateAuthority
from provisioning.claims import qr_png, qr_svg
from server.cli import load_settings
from server.db.engine import create_db_engine, session_factory
from server.db.migrate import migrate
from server.fleet import enrolment, health
from server.fleet.enrolment import EnrolmentError
from server.fleet.publisher import PahoPublisher
from server.fleet.runtime import FleetRuntime, build_runtime
from server.settings import Settings

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> dt.timedelta:
    """``30d``, ``12h``, ``90m``, ``45s`` or plain seconds."""
    m = _DURATION.match(text)
    if not m or float(m.group(1)) <= 0:
        raise click.BadParameter(f"{text!r} is not a duration: use e.g. 30d, 12h, 90m or 3600")
    return dt.timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])


@contextmanager
def _runtime() -> Iterator[tuple[Settings, FleetRuntime]]:
    settings = load_settings()
    migrate(settings.database_url)
    engine = create_db_engine(settings.database_url)
    publisher = PahoPublisher(settings.mqtt, timeout_s=settings.fleet.publish_timeout_s)
    try:
        try:
            runtime = build_runtime(settings, session_factory(engine), publisher)
        except CaError as exc:
            raise click.ClickException(str(exc)) from exc
        yield settings, runtime
    finally:
        publisher.close()
        engine.dispose()


@contextmanager
def _transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    try:
        with sessions.begin() as session:
            yield session
    except EnrolmentError as exc:
        raise click.ClickException(exc.message) from exc


def _sync(runtime: FleetRuntime) -> None:
    if runtime.broker_sync is None:
        click.echo(
            "note: RM_FLEET__BROKER_AUTH_DIR is not set: no broker files were written", err=True
        )
    elif runtime.sync_broker():
        click.echo(f"broker auth updated in {runtime.broker_sync.directory}", err=True)


@click.group("provision")
def provision() -> None:
    """Enrol scanners: CA, claim codes, devices, credentials, broker access, boot folders."""


# --------------------------------------------------------------------------- CA


@provision.command("init-ca")
@click.option("--name", default="Receipt Manager CA", show_default=True)
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to write ca.pem and ca.key (default: RM_FLEET__CA_DIR).",
)
def init_ca(name: str, directory: Path | None) -> None:
    """Create the deployment's certificate authority (refuses to overwrite one)."""
    directory = directory or load_settings().fleet.ca_dir
    if directory is None:
        raise click.ClickException("give --dir or set RM_FLEET__CA_DIR")
    if (directory / "ca.key").exists():
        raise click.ClickException(f"{directory} already holds a CA; keep it (devices trust it)")
    try:
        CertificateAuthority.create(name).save(directory)
    except CaError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"CA written to {directory} (ca.pem to share, ca.key to keep secret)")


@provision.command("server-cert")
@click.argument("hostnames", nargs=-1, required=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder for server.pem and server.key.",
)
def server_cert(hostnames: tuple[str, ...], out: Path) -> None:
    """Issue a TLS certificate for the broker or the API (host names and IPs)."""
    settings = load_settings()
    if settings.fleet.ca_dir is None:
        raise click.ClickException("set RM_FLEET__CA_DIR (receipts provision init-ca)")
    try:
        issued = CertificateAuthority.load(settings.fleet.ca_dir).issue_server(list(hostnames))
    except CaError as exc:
        raise click.ClickException(str(exc)) from exc
    out.mkdir(parents=True, exist_ok=True)
    issued.save(out / "server.pem", out / "server.key")
    click.echo(f"server certificate for {', '.join(hostnames)} written to {out}")


# --------------------------------------------------------------------------- claim codes


@provision.command("claim-code")
@click.argument("org")
@click.option("--ttl", default="30d", show_default=True, help="Validity: 30d, 12h, 90m...")
@click.option("--label", default="", help="A note, e.g. which shop the scanner goes to.")
@click.option(
    "--qr",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the QR code to this .png or .svg file.",
)
def claim_code(org: str, ttl: str, label: str, qr: Path | None) -> None:
    """Create a one-time claim code for organisation ORG (printed once)."""
    if qr is not None and qr.suffix.lower() not in (".png", ".svg"):
        raise click.BadParameter("the QR file must end in .png or .svg", param_hint="--qr")
    with _runtime() as (_s, runtime), _transaction(runtime.sessions) as session:
        issued = enrolment.create_claim_code(session, org, ttl=parse_duration(ttl), label=label)
    if qr is not None:
        data = qr_png(issued.code) if qr.suffix.lower() == ".png" else qr_svg(issued.code)
        qr.write_bytes(data)
    click.echo(issued.code)
    click.echo(f"expires {issued.record.expires_at:%Y-%m-%d %H:%M} UTC; works once", err=True)


# --------------------------------------------------------------------------- devices


@provision.command("list-devices")
@click.option("--org", default=None, help="Only this organisation's devices.")
def list_devices(org: str | None) -> None:
    """Registered scanners: organisation, state, broker account, last seen, versions."""
    with _runtime() as (_s, runtime), _transaction(runtime.sessions) as session:
        rows = enrolment.list_devices(session, org)
        now = runtime.clock()
        for r in rows:
            d = r.device
            state = (
                "removed"
                if d.removed_at
                else health.device_state(
                    online=d.online,
                    last_seen_at=d.last_seen_at,
                    telemetry=d.telemetry,
                    revoked=r.revoked,
                    now=now,
                )
            )
            account = "none" if r.account is None else ("revoked" if r.revoked else "active")
            seen = f"{d.last_seen_at:%Y-%m-%d %H:%M}" if d.last_seen_at else "never"
            click.echo(
                f"{d.device_id:<24} {r.organization:<20} {state:<8} account={account:<8} "
                f"seen={seen:<16} agent={d.agent_version or '-'}"
            )
        if not rows:
            click.echo("no devices")


@provision.command("revoke")
@click.argument("device_id")
def revoke(device_id: str) -> None:
    """Revoke DEVICE_ID: its password and certificates stop working; it is cut off at once."""
    with _runtime() as (_s, runtime):
        with _transaction(runtime.sessions) as session:
            enrolment.revoke(session, device_id)
        click.echo(f"device {device_id} revoked")
        _sync(runtime)


@provision.command("rotate")
@click.argument("device_id")
@click.option("--certificate", is_flag=True, help="Also issue a new client key and certificate.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Write broker-password (and device.pem/key) into this folder, not stdout.",
)
def rotate(device_id: str, certificate: bool, out: Path | None) -> None:
    """New credentials for DEVICE_ID (also re-enables a revoked one); the old ones stop working."""
    with _runtime() as (_s, runtime):
        if certificate and runtime.ca is None:
            raise click.ClickException("--certificate needs the CA: set RM_FLEET__CA_DIR")
        with _transaction(runtime.sessions) as session:
            done = enrolment.rotate(session, device_id, runtime.ca, with_certificate=certificate)
        cert = done.certificate
        if out is not None:
            install_credentials(
                out,
                done.credentials,
                cert.cert_pem if cert else None,
                cert.key_pem if cert else None,
                write_yaml=False,
            )
            click.echo(f"credentials of {device_id} written to {out}", err=True)
        else:
            if cert is not None:
                raise click.ClickException("--certificate needs --out for the key and certificate")
            click.echo(done.credentials.password)
        _sync(runtime)


@provision.command("service-account")
@click.argument("username", default="_ingest")
def service_account(username: str) -> None:
    """Create or rotate the server's broker account (role ingest); prints its password once.

    Give it to ingest and the API as RM_MQTT__USERNAME / RM_MQTT__PASSWORD."""
    with _runtime() as (_s, runtime):
        with _transaction(runtime.sessions) as session:
            creds = enrolment.service_account(session, username)
        click.echo(creds.password)
        _sync(runtime)


@provision.command("sync-broker")
@click.option("--every", type=float, default=None, help="Keep syncing every N seconds.")
@click.option("--force", is_flag=True, help="Rewrite and reload even if nothing changed.")
def sync_broker(every: float | None, force: bool) -> None:
    """Write the broker's password file, ACL and CRL from the registry, and reload it."""
    with _runtime() as (_s, runtime):
        if runtime.broker_sync is None:
            raise click.ClickException("set RM_FLEET__BROKER_AUTH_DIR to the broker's auth folder")
        changed = runtime.broker_sync.sync(force=force)
        click.echo("broker auth " + ("updated" if changed else "already up to date"))
        while every is not None:
            time.sleep(every)
            runtime.sync_broker()


@provision.command("republish")
@click.option("--org", default=None, help="Only this organisation's devices.")
def republish(org: str | None) -> None:
    """Publish desired configurations and commands the broker did not take (it was down)."""
    from server.fleet import service

    with _runtime() as (_s, runtime):
        with _transaction(runtime.sessions) as session:
            org_ids = enrolment.organization_ids(session, org)
        targets = []
        for org_id in org_ids:
            with runtime.transaction(org_id) as repo:
                targets += [(org_id, d) for d in service.pending_devices(repo, runtime.clock())]
        sent = failed = 0
        for org_id, device_id in targets:
            if service.deliver(runtime, org_id, device_id):
                sent += 1
            else:
                failed += 1
        click.echo(f"{sent} devices brought up to date, {failed} still pending")
        if failed:
            raise SystemExit(1)


@provision.command("rollout-tick")
@click.option("--every", type=float, default=None, help="Repeat every this many seconds.")
def rollout_tick(every: float | None) -> None:
    """Advance every pending or running OTA rollout once (or forever with --every)."""
    from server.fleet import rollouts

    with _runtime() as (_s, runtime):
        while True:
            click.echo(f"{rollouts.tick_all(runtime)} rollouts advanced")
            if every is None:
                break
            time.sleep(every)


# --------------------------------------------------------------------------- boot folder


@provision.command("boot-folder")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--device-id", required=True, help="The scanner's id (its broker user name).")
@click.option("--broker-host", required=True, help="Broker host name the scanner connects to.")
@click.option("--broker-port", type=int, default=8883, show_default=True)
@click.option("--no-tls", is_flag=True, help="Plain MQTT (a lab network only).")
@click.option("--server-url", default=None, help="https:// URL of this server (claim mode).")
@click.option("--claim-code", "code", default=None, help="An existing claim code.")
@click.option("--org", default=None, help="Create a fresh claim code for this organisation.")
@click.option("--ttl", default="30d", show_default=True, help="Validity of a fresh claim code.")
@click.option(
    "--credentials",
    "with_credentials",
    is_flag=True,
    help="Instead of a claim: issue the registered device's credentials now.",
)
def boot_folder(  # noqa: PLR0917 (click passes options positionally)
    folder: Path,
    device_id: str,
    broker_host: str,
    broker_port: int,
    no_tls: bool,
    server_url: str | None,
    code: str | None,
    org: str | None,
    ttl: str,
    with_credentials: bool,
) -> None:
    """Write a scanner's boot folder (agent.yaml, ca.pem, claim.json or credentials) to FOLDER,
    e.g. /media/$USER/bootfs/receipts on its SD card."""
    if [code is not None, org is not None, with_credentials].count(True) != 1:
        raise click.UsageError("give exactly one of --claim-code, --org or --credentials")
    with _runtime() as (_s, runtime):
        ca_pem = runtime.ca.cert_pem if runtime.ca is not None and not no_tls else None
        creds = cert = key = None
        with _transaction(runtime.sessions) as session:
            if org is not None:
                code = enrolment.create_claim_code(
                    session, org, ttl=parse_duration(ttl), label=f"boot folder of {device_id}"
                ).code
            elif with_credentials:
                done = enrolment.rotate(
                    session,
                    device_id,
                    runtime.ca,
                    with_certificate=runtime.ca is not None and not no_tls,
                )
                creds = done.credentials
                if done.certificate is not None:
                    cert, key = done.certificate.cert_pem, done.certificate.key_pem
            boot = BootConfig(
                device_id=device_id,
                broker_host=broker_host,
                broker_port=broker_port,
                ca_cert_pem=ca_pem,
                tls=not no_tls,
                server_url=server_url if code else None,
                claim_code=code,
                credentials=creds,
                client_cert_pem=cert,
                client_key_pem=key,
            )
            try:  # inside the transaction: a folder that can't be written rolls the code back
                written = write_boot(folder, boot)
            except BootConfigError as exc:
                raise click.ClickException(str(exc)) from exc
        for path in written:
            click.echo(str(path))
        if with_credentials:
            _sync(runtime)
