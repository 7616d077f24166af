"""The updater in-process: verify, download, install, switch, self-test, probation, rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.ota.slots import SlotStore
from edge_agent.ota.updater import Updater
from models.protocol import CommandResult
from provisioning.signing import generate_signing_key
from tests.edge_agent.ota.helpers import (
    FakeHost,
    make_agent_release,
    make_release,
    ota_command,
    ota_config,
    serve,
    statuses,
)


@pytest.fixture
def key():
    return generate_signing_key()


def updater_for(tmp_path: Path, key, releases, log=None, **kw):
    host = FakeHost()
    results: list[CommandResult] = []
    updater = Updater(
        ota_config(tmp_path, key, **kw), host, results.append, transport=serve(releases, log)
    )
    host.reader = host.build_reader(updater.recover())
    return updater, host, results


def install(updater: Updater, release, **change) -> CommandResult | None:
    final = updater.start(ota_command(release, **change))
    updater.wait(30)
    return final


def test_a_good_release_is_installed_tested_and_final_after_probation(tmp_path, key) -> None:
    release = make_release(tmp_path, key, "models-2")
    updater, host, results = updater_for(tmp_path, key, [release], probation_scans=2)
    assert install(updater, release) is None, "the install runs in the background"
    store = updater.stores["models"]
    assert store.current() == "a"
    assert host.models_dir == store.slot_dir("a") and host.reader.model == {"total": "14.64"}
    assert statuses(results) == ["download", "install", "selftest", "probation"]
    assert not updater.on_scan(True)
    assert statuses(results)[-1] == "probation", "one of two scans"
    assert not updater.on_scan(True)
    assert results[-1].status == "succeeded" and results[-1].output["scans_ok"] == 2
    assert store.read_state() is None
    assert updater.releases() == {"release.models": "models-2"}
    store.verify("a", updater.keys)
    assert list(store.downloads.iterdir()) == [], "the artifact is not kept"


def test_a_bad_signature_is_refused_before_any_download(tmp_path, key) -> None:
    release = make_release(tmp_path, key, "models-2")
    other = make_release(tmp_path, generate_signing_key(), "models-3")
    requests: list[str] = []
    updater, _, results = updater_for(tmp_path, key, [release], requests)
    final = install(updater, release, signature=other.signature)
    assert final is not None and final.status == "failed"
    assert final.output["reason"] == "bad_signature"
    assert requests == [] and results == []
    assert updater.stores["models"].current() is None


def test_an_artifact_that_is_not_the_signed_one_is_refused(tmp_path, key) -> None:
    release = make_release(tmp_path, key, "models-2")
    data = bytearray(release.artifact_path.read_bytes())
    data[-5] ^= 0xFF
    release.artifact_path.write_bytes(bytes(data))
    updater, _, results = updater_for(tmp_path, key, [release])
    install(updater, release)
    assert results[-1].status == "failed" and results[-1].output["reason"] == "download"
    assert "sha256" in results[-1].detail
    assert updater.stores["models"].current() is None


def test_http_is_refused_unless_the_dev_flag_allows_it(tmp_path, key) -> None:
    release = make_release(tmp_path, key, "models-2")
    updater, _, results = updater_for(tmp_path, key, [release])
    install(updater, release, url="http://updates.test/" + release.artifact_path.name)
    assert results[-1].status == "failed" and "https" in results[-1].detail


def test_a_failing_self_test_is_rolled_back_to_the_release_before(tmp_path, key) -> None:
    good = make_release(tmp_path, key, "models-2")
    broken = make_release(tmp_path, key, "models-3", model={"total": "0.00"})
    updater, host, results = updater_for(tmp_path, key, [good, broken], probation_scans=0)
    install(updater, good)
    assert results[-1].status == "succeeded"
    install(updater, broken)
    final = results[-1]
    assert final.status == "failed" and final.output["rolled_back"]
    assert final.output["reason"] == "selftest"
    case = final.output["selftest"]["cases"][0]
    assert case["mismatches"]["total"] == {"expected": "14.64", "got": "0.00"}
    store = updater.stores["models"]
    assert store.current() == "a" and store.read_state() is None
    assert host.reader.model == {"total": "14.64"}, "the agent kept reading with models-2"


def test_failed_real_scans_on_probation_roll_back(tmp_path, key) -> None:
    flaky = make_release(tmp_path, key, "models-2", model={"total": "14.64", "fail_dark": True})
    updater, host, results = updater_for(tmp_path, key, [flaky], probation_scans=3)
    install(updater, flaky)
    assert host.reader.model.get("fail_dark")
    assert not updater.on_scan(True)
    assert updater.on_scan(False), "one failed read rolls back (probation_failures=1)"
    assert results[-1].status == "failed" and results[-1].output["reason"] == "probation"
    assert updater.stores["models"].current() is None
    assert host.reader.model.get("factory"), "back on the factory models"


def test_one_update_at_a_time_and_an_installed_release_is_not_installed_again(
    tmp_path, key
) -> None:
    first = make_release(tmp_path, key, "models-2")
    second = make_release(tmp_path, key, "models-3")
    updater, _, results = updater_for(tmp_path, key, [first, second], probation_scans=1)
    install(updater, first)
    busy = install(updater, second)
    assert busy is not None and busy.output["reason"] == "busy"
    updater.on_scan(True)
    assert results[-1].status == "succeeded"
    again = install(updater, first)
    assert again is not None and again.status == "succeeded" and "already" in again.detail


def test_a_restart_during_the_self_test_runs_it_again(tmp_path, key) -> None:
    release = make_release(tmp_path, key, "models-2")
    updater, _, _ = updater_for(tmp_path, key, [release], probation_scans=1)
    install(updater, release)
    store = updater.stores["models"]
    state = store.read_state()
    assert state is not None
    store.write_state(state | {"stage": "selftest"})  # as if the power went during it
    updater2, host2, results2 = updater_for(tmp_path, key, [release], probation_scans=1)
    assert host2.models_dir is None and host2.reader.model == {"total": "14.64"}
    assert (store.read_state() or {}).get("stage") == "probation"
    updater2.on_scan(True)
    assert results2[-1].status == "succeeded"


def test_a_release_that_keeps_crashing_the_agent_is_rolled_back(tmp_path, key) -> None:
    release = make_release(tmp_path, key, "models-2")
    updater, _, _ = updater_for(tmp_path, key, [release], probation_scans=5, agent_max_boots=2)
    install(updater, release)
    for _ in range(2):  # two starts that read nothing
        _, _, results = updater_for(tmp_path, key, [release], agent_max_boots=2)
        assert results == []
    _, _, results = updater_for(tmp_path, key, [release], agent_max_boots=2)
    assert results[-1].status == "failed" and results[-1].output["reason"] == "boot"
    assert updater.stores["models"].current() is None


def test_a_damaged_current_slot_falls_back(tmp_path, key) -> None:
    release = make_release(tmp_path, key, "models-2")
    updater, _, _ = updater_for(tmp_path, key, [release], probation_scans=0)
    install(updater, release)
    store: SlotStore = updater.stores["models"]
    (store.slot_dir("a") / "model.json").write_text(json.dumps({"total": "1.00"}))
    _, host, _ = updater_for(tmp_path, key, [release])
    assert store.current() is None and host.reader.model.get("factory")


def test_an_agent_release_is_self_tested_on_its_own_code_then_restarted_into(
    tmp_path, key, monkeypatch
) -> None:
    from firmware.launch import count_boot

    release = make_agent_release(tmp_path, key, "agent-2")
    updater, host, results = updater_for(tmp_path, key, [release], probation_scans=1)
    install(updater, release)
    store = updater.stores["agent"]
    assert host.restarts == 1, "the agent exits for systemd to start the new code"
    assert store.current() == "a"
    assert statuses(results) == ["download", "install", "selftest", "restart"]
    assert (store.read_state() or {})["stage"] == "restart"

    # systemd starts the agent through firmware/launch.py, which runs the new code
    assert "start 1 of 3" in (count_boot(store.root) or "")
    monkeypatch.setenv("RM_AGENT_RELEASE", "agent-2")
    updater2, _, results2 = updater_for(tmp_path, key, [release], probation_scans=1)
    assert statuses(results2) == ["probation"]
    updater2.on_scan(True)
    assert results2[-1].status == "succeeded"
    assert updater2.releases() == {"release.agent": "agent-2"}


def test_an_agent_release_failing_its_self_test_is_never_switched_in(tmp_path, key) -> None:
    release = make_agent_release(tmp_path, key, "agent-3", passes=False)
    updater, host, results = updater_for(tmp_path, key, [release])
    install(updater, release)
    assert results[-1].status == "failed" and results[-1].output["reason"] == "selftest"
    assert results[-1].output["selftest"]["code"] == "new agent", "the new code ran the test"
    assert updater.stores["agent"].current() is None and host.restarts == 0


def test_a_new_agent_that_does_not_start_is_switched_back_by_the_launcher(
    tmp_path, key, monkeypatch
) -> None:
    from firmware.launch import count_boot

    release = make_agent_release(tmp_path, key, "agent-2")
    updater, _, _ = updater_for(tmp_path, key, [release], agent_max_boots=2)
    install(updater, release)
    store = updater.stores["agent"]
    notes = [count_boot(store.root) for _ in range(3)]  # three starts that crash at once
    assert "rolled back" in (notes[-1] or "")
    assert store.current() is None
    _, _, results = updater_for(tmp_path, key, [release])  # the old agent starts
    assert results[-1].status == "failed" and results[-1].output["reason"] == "boot"
    assert "without reading a receipt" in results[-1].detail
    assert store.read_state() is None


def test_a_release_that_would_fill_the_disk_is_refused(tmp_path, key, monkeypatch) -> None:
    import shutil as real_shutil

    from edge_agent.ota import install as module

    release = make_release(tmp_path, key, "models-2")
    updater, _, results = updater_for(tmp_path, key, [release])

    class Full:
        @staticmethod
        def disk_usage(path):
            return real_shutil.disk_usage(path)._replace(free=10 << 20)

    monkeypatch.setattr(module, "shutil", Full)
    install(updater, release)
    assert results[-1].status == "failed" and results[-1].output["reason"] == "disk"
    assert updater.stores["models"].current() is None
