"""The systemd units pass `systemd-analyze verify` with no complaint at all."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
UNITS = FIRMWARE / "systemd"
IMAGE_FILES = FIRMWARE / "image" / "stage-receipts" / "00-install" / "files"
#: Install locations on the Pi, replaced by stand-in executables here.
PREFIXES = ("/opt/receipts/venv/bin/", "/usr/local/sbin/")


def _verify(folder: Path, names: list[str]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("systemd-analyze")
    assert binary, "systemd-analyze (Debian package systemd) is needed"
    return subprocess.run(
        [binary, "verify", *(str(folder / n) for n in names)],
        capture_output=True,
        text=True,
        check=False,
        env={"SYSTEMD_LOG_LEVEL": "notice", "PATH": "/usr/bin:/bin"},
    )


def _staged(tmp_path: Path, edit=None) -> tuple[Path, list[str]]:
    """Copies of the units whose ExecStart points at stand-in executables in `tmp_path`.

    verify checks that each command exists and is executable; on this machine the agent is not
    installed under /opt/receipts, so only that prefix is rewritten, nothing else.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("receipts", "python", "receipts-data-partition"):
        exe = bin_dir / name
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    out = tmp_path / "units"
    out.mkdir()
    names = []
    units = [*UNITS.glob("*.service"), *UNITS.glob("*.mount"), *IMAGE_FILES.glob("*.service")]
    for unit in sorted(set(units)):
        text = unit.read_text()
        for prefix in PREFIXES:
            text = text.replace(prefix, f"{bin_dir}/")
        if edit is not None:
            text = edit(unit.name, text)
        (out / unit.name).write_text(text)
        names.append(unit.name)
    return out, names


def test_units_verify_cleanly(tmp_path: Path) -> None:
    folder, names = _staged(tmp_path)
    assert {
        "receipts-agent.service",
        "receipts-firstboot.service",
        "var-lib-receipts.mount",
        "receipts-data-partition.service",
    } <= set(names)
    result = _verify(folder, names)
    assert result.returncode == 0
    assert result.stdout + result.stderr == ""


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a bad value or an unknown key is reported."""

    def break_it(name: str, text: str) -> str:
        if name == "receipts-agent.service":
            return text.replace("WatchdogSec=60", "WatchdogSec=sixty") + "\n[Service]\nBogus=1\n"
        return text

    folder, names = _staged(tmp_path, break_it)
    result = _verify(folder, names)
    output = result.stdout + result.stderr
    assert "sixty" in output
    assert "Bogus" in output


@pytest.fixture
def agent_unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / "receipts-agent.service")
    return parser


def test_agent_unit_restarts_is_watched_and_hardened(agent_unit) -> None:
    service = agent_unit["Service"]
    assert service["Type"] == "notify"
    assert service["Restart"] == "always"
    assert int(service["WatchdogSec"]) > 0
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == "/var/lib/receipts"
    assert service["User"] != "root"


def test_hardware_watchdog_dropin() -> None:
    parser = configparser.ConfigParser()
    parser.read(UNITS / "watchdog.conf")
    assert parser["Manager"]["RuntimeWatchdogSec"] == "15"


def test_image_scripts_are_valid_shell() -> None:
    scripts = [
        FIRMWARE / "image" / "build.sh",
        FIRMWARE / "image" / "stage-receipts" / "prerun.sh",
        FIRMWARE / "image" / "stage-receipts" / "00-install" / "00-run.sh",
        IMAGE_FILES / "receipts-data-partition",
    ]
    for script in scripts:
        result = subprocess.run(
            ["bash", "-n", str(script)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"{script}: {result.stderr}"
        assert script.stat().st_mode & 0o111, f"{script} is not executable"


def test_image_installs_every_unit_it_enables() -> None:
    run = (FIRMWARE / "image" / "stage-receipts" / "00-install" / "00-run.sh").read_text()
    for unit in ("receipts-agent.service", "receipts-firstboot.service", "var-lib-receipts.mount"):
        assert (UNITS / unit).is_file()
        assert f"files/{unit}" in run
        assert unit in run.split("systemctl enable", 1)[1]
    assert "camera_auto_detect=1" in run
    assert "dtparam=watchdog=on" in run
    assert "overlayroot" in run
