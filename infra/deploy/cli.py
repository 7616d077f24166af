"""`receipts deploy release|rollback|status|nginx-site`: blue-green releases behind nginx."""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from infra.deploy import nginx
from infra.deploy.bluegreen import BlueGreen, DeployConfig, DeployError, default_server_command


def _options(f: Callable[..., Any]) -> Callable[..., Any]:
    opts = [
        click.option(
            "--state-dir",
            type=click.Path(path_type=Path, file_okay=False),
            default=Path("/var/lib/receipts/deploy"),
            show_default=True,
            help="Live colour, pids and the colours' logs.",
        ),
        click.option(
            "--upstream-file",
            type=click.Path(path_type=Path, dir_okay=False),
            default=Path("/etc/nginx/receipts-upstream.conf"),
            show_default=True,
            help="The file nginx includes for the API upstream.",
        ),
        click.option("--blue-port", default=8001, show_default=True, type=int),
        click.option("--green-port", default=8002, show_default=True, type=int),
        click.option(
            "--nginx", "nginx_cmd", default="nginx", show_default=True, help="nginx command line."
        ),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _config(
    *,
    state_dir: Path,
    upstream_file: Path,
    blue_port: int,
    green_port: int,
    nginx_cmd: str,
    **extra: Any,
) -> DeployConfig:
    return DeployConfig(
        state_dir=state_dir,
        upstream_file=upstream_file,
        ports={"blue": blue_port, "green": green_port},
        nginx=shlex.split(nginx_cmd),
        **extra,
    )


@click.group("deploy")
def deploy() -> None:
    """Blue-green releases of the API behind nginx (see infra/deploy/README.md)."""


@deploy.command("release")
@_options
@click.option(
    "--server-command",
    default=None,
    help="Command starting a colour, with {port}; default: receipts server on 127.0.0.1.",
)
@click.option("--ready-timeout", default=60.0, show_default=True, type=float)
@click.option("--watch", "watch_s", default=60.0, show_default=True, type=float)
@click.option("--max-error-ratio", default=0.01, show_default=True, type=float)
@click.option("--min-requests", default=20, show_default=True, type=int)
@click.option("--drain", "drain_s", default=10.0, show_default=True, type=float)
def release(
    *,
    server_command: str | None,
    ready_timeout: float,
    watch_s: float,
    max_error_ratio: float,
    min_requests: int,
    drain_s: float,
    **common: Any,
) -> None:
    """Start the idle colour, switch nginx to it, watch it, roll back if it fails."""
    logging.getLogger("infra.deploy").setLevel(logging.INFO)
    config = _config(
        **common,
        server_command=server_command or default_server_command(),
        ready_timeout_s=ready_timeout,
        watch_s=watch_s,
        max_error_ratio=max_error_ratio,
        min_requests=min_requests,
        drain_s=drain_s,
    )
    result = BlueGreen(config).release()
    click.echo(
        f"{result.outcome}: {result.live} is live "
        f"({result.errors} errors in {result.requests} requests watched) {result.detail}".rstrip()
    )
    if result.outcome != "switched":
        raise SystemExit(1)


@deploy.command("rollback")
@_options
def rollback(**common: Any) -> None:
    """Send traffic back to the previous colour (while it still runs)."""
    try:
        colour = BlueGreen(_config(**common)).rollback()
    except (DeployError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{colour} is live")


@deploy.command("status")
@_options
def status(**common: Any) -> None:
    """Which colour is live, and where nginx points."""
    config = _config(**common)
    bg = BlueGreen(config)
    port = nginx.upstream_port(config.upstream_file) if config.upstream_file.exists() else None
    click.echo(f"live: {bg.live()}; nginx upstream port: {port}; pids: {bg.state()['pids']}")


@deploy.command("nginx-site")
@click.option("--listen", default="80", show_default=True)
@click.option(
    "--upstream-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("/etc/nginx/receipts-upstream.conf"),
    show_default=True,
)
def nginx_site(listen: str, upstream_file: Path) -> None:
    """Print /etc/nginx/conf.d/receipts.conf for Debian's nginx."""
    click.echo(nginx.site_config(listen, upstream_file), nl=False)
