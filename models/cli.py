"""The `receipts` command: one entry point whose subcommands each package contributes.

Subcommands are declared in pyproject.toml under the entry-point group ``receipts.commands``
and imported only when run, so a scanner without the server's extra still has a working
`receipts`, and asking for a command whose extra is missing says which extra to install.
"""

from __future__ import annotations

import logging
import os
from importlib.metadata import EntryPoint, entry_points

import click

GROUP = "receipts.commands"

#: Which extra provides the modules of each package, for the error message.
_EXTRA_OF = {
    "edge_agent": "edge",
    "server": "server",
    "provisioning": "server",
    "firmware": "edge",
    "infra": "ops",
}


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_entry_points())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        ep = _entry_points().get(cmd_name)
        if ep is None:
            return None
        try:
            command = ep.load()
        except ImportError as exc:
            package = ep.value.split(".", 1)[0]
            extra = _EXTRA_OF.get(package, "dev")
            raise click.ClickException(
                f"'receipts {cmd_name}' needs a library that is not installed ({exc.name}): "
                f"pip install 'receipt-manager[{extra}]'"
            ) from exc
        if not isinstance(command, click.Command):
            raise click.ClickException(f"entry point {ep.value} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List every command; one whose extra is missing says so instead of failing."""
        rows = []
        for name in self.list_commands(ctx):
            try:
                command = self.get_command(ctx, name)
                short = command.get_short_help_str(60) if command else ""
            except click.ClickException as exc:
                short = f"(unavailable: {exc.message})"
            rows.append((name, short))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level",
    default=lambda: os.environ.get("RM_LOG_LEVEL", "INFO"),
    show_default="INFO or $RM_LOG_LEVEL",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
def main(log_level: str) -> None:
    """Receipt Manager: scanners that read receipts, and the server that keeps them."""
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
