"""`receipts agent --config agent.yaml`: run the scanner daemon until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from types import FrameType

import click

from edge_agent.capture import SourceUnavailable
from edge_agent.config import ConfigError, load_config

log = logging.getLogger(__name__)


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The agent's YAML config (see edge_agent/agent.example.yaml).",
)
@click.option("--check", is_flag=True, help="Validate the config and exit (0 if it is usable).")
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
)
def agent(config_path: Path, check: bool, log_level: str) -> None:
    """Run the scanner agent: capture, read, store in the outbox, publish over MQTT."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if check:
        click.echo(f"{config_path}: valid config for device {config.device_id}")
        return
    from edge_agent.logging_setup import configure_logging

    configure_logging(config.logging, config.device_id)
    from edge_agent.agent import Agent

    try:
        runner = Agent(config)
    except SourceUnavailable as exc:
        raise click.ClickException(f"source.type {config.source.type}: {exc}") from exc

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        runner.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    runner.run()
    if runner.exit_code:  # a restart_agent command or an agent update: systemd starts us again
        raise SystemExit(runner.exit_code)
