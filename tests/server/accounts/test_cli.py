"""`receipts admin create-user`: the first owner of an organisation, then sign-in works."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from models.cli import main
from server.accounts import service as accounts
from server.db.engine import create_db_engine, session_factory


def test_create_user_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    monkeypatch.setenv("RM_DATABASE_URL", url)
    runner = CliRunner()

    def admin(*args: str, password: str = "a long enough password") -> Result:
        env = {"RM_NEW_USER_PASSWORD": password}
        return runner.invoke(main, ["admin", *args], env=env, catch_exceptions=False)

    assert admin("create-org", "Acme").exit_code == 0
    ok = admin("create-user", "Acme", "Boss@Acme.test")
    assert ok.exit_code == 0 and "boss@acme.test (owner) created" in ok.output
    short = admin("create-user", "Acme", "two@acme.test", password="short")
    assert short.exit_code != 0 and "at least 10" in short.output
    role = admin("create-user", "Acme", "three@acme.test", "--role", "boss")
    assert role.exit_code != 0 and "choose one of" in role.output
    engine = create_db_engine(url)
    try:
        with session_factory(engine).begin() as s:
            assert accounts.authenticate(s, "boss@acme.test", "a long enough password") is not None
            assert accounts.authenticate(s, "two@acme.test", "short") is None
    finally:
        engine.dispose()
