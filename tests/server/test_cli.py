"""The admin commands against a real SQLite database, through the `receipts` dispatcher."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from models.cli import main
from server.db.engine import create_db_engine, session_factory
from server.organizations.service import organization_of_token


def test_admin_registers_org_device_token_and_lists_dead_letters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("RM_DATABASE_URL", url)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, ["admin", *args], catch_exceptions=False)

    assert "created" in run("create-org", "Acme").output
    assert run("create-org", "Acme").exit_code != 0  # exists already, said plainly
    assert run("add-device", "Acme", "till-1").exit_code == 0
    missing = run("add-device", "Nobody", "till-2")
    assert missing.exit_code != 0
    assert "create-org" in missing.output
    assert run("add-device", "Acme", "bad/id").exit_code != 0
    token = run("create-token", "Acme").output.strip()
    assert token.startswith("rm_")
    engine = create_db_engine(url)
    with session_factory(engine)() as s:
        assert organization_of_token(s, token) is not None
        assert organization_of_token(s, token + "x") is None
    engine.dispose()
    assert "no dead letters" in run("dead-letters").output


def test_bad_configuration_names_the_key(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RM_MQTT__PORT", "not-a-port")
    result = CliRunner().invoke(main, ["admin", "dead-letters"])
    assert result.exit_code != 0
    assert "RM_MQTT__PORT" in result.output
