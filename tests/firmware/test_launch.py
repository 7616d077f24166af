"""firmware/launch.py: the agent starts on the code of the agent release in force."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from edge_agent.ota.updater import Updater
from provisioning.signing import generate_signing_key
from tests.edge_agent.ota.helpers import (
    FakeHost,
    make_agent_release,
    ota_command,
    ota_config,
    serve,
)

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import sys, json; from pathlib import Path; from firmware.launch import prepare; "
    "r = prepare(Path(sys.argv[1])); import edge_agent, os; "
    "print(json.dumps([r, edge_agent.__file__, os.environ.get('RM_AGENT_RELEASE')]))"
)


def probe(ota_dir: Path) -> list:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(ota_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_release_in_force_runs_and_a_damaged_one_is_skipped(tmp_path: Path) -> None:
    key = generate_signing_key()
    release = make_agent_release(tmp_path, key, "agent-2")
    updater = Updater(
        ota_config(tmp_path, key), FakeHost(), lambda r: None, transport=serve([release])
    )
    updater.recover()
    updater.start(ota_command(release))
    updater.wait(30)
    ota = tmp_path / "ota"
    found, module, env = probe(ota)
    assert found == "agent-2" and env == "agent-2"
    assert module.startswith(str(ota / "agent" / "slots" / "a" / "python"))
    state = json.loads((ota / "agent" / "state.json").read_text())
    assert state["boots"] == 1, "the start was counted"

    (ota / "agent" / "slots" / "a" / "python" / "edge_agent" / "__init__.py").write_text("x=1\n")
    found, module, env = probe(ota)
    assert found is None and env is None
    assert module.startswith(str(ROOT)), "the installed agent runs instead"


def test_without_updates_the_installed_agent_runs(tmp_path: Path) -> None:
    found, module, _ = probe(tmp_path / "nothing")
    assert found is None and module.startswith(str(ROOT))
