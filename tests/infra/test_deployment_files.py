"""The compose stack, Dockerfiles and Mosquitto files, checked by parsing (Docker cannot run
here): services and healthchecks, RM_* settings that server/settings.py accepts and validates,
two ingest workers sharing one subscription, mounts that exist, no secrets in the files."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.mosquitto import acl
from tests.infra.contract import INFRA
from tests.infra.settings_names import env_names

COMPOSE = INFRA / "compose.yaml"
LONG_RUNNING = {
    "postgres", "mosquitto", "server", "ingest-1", "ingest-2",
    "minio", "prometheus", "alertmanager", "node-exporter", "grafana",
}  # fmt: skip
_VAR = re.compile(r"\$\{(\w+)(?::?[?-]([^}]*))?\}")


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def _services() -> dict[str, dict[str, Any]]:
    return dict(_compose()["services"])


def _interpolate(value: str) -> str:
    """Compose's ${VAR:?message} and ${VAR:-default}, with example secrets for required ones."""
    return _VAR.sub(lambda m: f"example-{m.group(1).lower()}", value)


def test_the_stack_has_every_service() -> None:
    services = _services()
    assert set(services) >= LONG_RUNNING
    assert {"grafana-sync", "minio-init", "backup"} <= set(services)


def test_long_running_services_have_healthchecks_and_restart() -> None:
    for name in LONG_RUNNING:
        service = _services()[name]
        check = service.get("healthcheck")
        assert check and check["test"][0] == "CMD", name
        assert service.get("restart") == "unless-stopped", name
    server_check = " ".join(_services()["server"]["healthcheck"]["test"])
    assert "127.0.0.1:8000/health" in server_check


def test_dependencies_wait_for_health() -> None:
    services = _services()
    for name, service in services.items():
        for dep, spec in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits on {dep}'s health"
    assert services["server"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_rm_variables_are_ones_the_server_accepts() -> None:
    known = env_names()
    for name, service in _services().items():
        for key in service.get("environment") or {}:
            if key.startswith("RM_") and not key.startswith(("RM_GRAFANA_", "RM_BACKUP_")):
                assert key in known, f"{name}: {key} is not a setting of server/settings.py"


@pytest.mark.parametrize("name", ["server", "ingest-1", "ingest-2"])
def test_server_settings_validate_with_the_compose_environment(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.settings import Settings

    for key in [k for k in os.environ if k.startswith("RM_")]:
        monkeypatch.delenv(key)
    for key, value in _services()[name]["environment"].items():
        monkeypatch.setenv(key, _interpolate(str(value)))
    settings = Settings()
    assert settings.environment == "production"
    assert settings.database_url.startswith("postgresql+psycopg2://receipts:")
    assert settings.mqtt.port == 8883
    assert settings.mqtt.tls_ca is not None
    assert settings.mqtt.password is not None


@pytest.mark.parametrize("name", ["server", "ingest-1", "ingest-2", "backup"])
def test_images_go_to_the_minio_bucket_minio_init_prepares(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.images.s3 import S3ImageStoreConfig
    from server.settings import Settings

    for key in [k for k in os.environ if k.startswith("RM_")]:
        monkeypatch.delenv(key)
    for key, value in _services()[name]["environment"].items():
        if not key.startswith("RM_BACKUP_"):
            monkeypatch.setenv(key, _interpolate(str(value)))
    store = Settings().image_store
    assert isinstance(store, S3ImageStoreConfig)
    assert store.endpoint_url == "http://minio:9000" and store.addressing_style == "path"
    assert store.server_side_encryption == "AES256"
    init = " ".join(_services()["minio-init"]["command"])
    assert f"mc mb --ignore-existing local/{store.bucket}" in init
    assert f"mc version enable local/{store.bucket}" in init
    assert f"mc encrypt set sse-s3 local/{store.bucket}" in init
    assert f"mc admin user add local {store.access_key_id} " in init
    assert "MINIO_KMS_SECRET_KEY" in _services()["minio"]["environment"]  # SSE-S3 needs a KMS
    depends = _services()[name].get("depends_on") or {}
    if name != "backup":
        assert depends["minio-init"]["condition"] == "service_completed_successfully"


def test_two_ingest_workers_share_one_subscription() -> None:
    workers = [s["environment"] for n, s in _services().items() if n.startswith("ingest-")]
    assert len(workers) == 2
    assert len({w["RM_INGEST__CLIENT_ID"] for w in workers}) == 2
    assert {w["RM_INGEST__SHARED_GROUP"] for w in workers} == {"ingest"}
    assert {tuple(s["command"]) for n, s in _services().items() if n.startswith("ingest-")} == {
        ("ingest",)
    }


def test_secrets_are_never_written_in_the_file() -> None:
    for name, service in _services().items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|TOKEN", key):
                assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", str(value)), f"{name}: {key}"
        for value in (service.get("environment") or {}).values():
            for m in re.finditer(r"://[^:/@]+:([^@]+)@", str(value)):
                assert m.group(1).startswith("${"), f"{name}: password in a URL"


def test_mounted_files_exist() -> None:
    for name, service in _services().items():
        for volume in service.get("volumes") or []:
            source = str(volume).split(":")[0]
            if source.startswith("./") and "/certs" not in source and "passwd" not in source:
                assert (INFRA / source).exists(), f"{name} mounts missing {source}"


def _dockerfile(name: str) -> list[str]:
    text = (INFRA / "docker" / name).read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_server_dockerfile_is_multistage_non_root_with_healthcheck() -> None:
    lines = _dockerfile("server.Dockerfile")
    froms = [line for line in lines if line.startswith("FROM ")]
    assert len(froms) >= 2
    assert any("COPY --from=build" in line for line in lines)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    health = [line for line in lines if line.startswith("HEALTHCHECK")]
    assert len(health) == 1 and "/health" in health[0]
    assert "EXPOSE 8000" in lines
    # The runtime stage does not carry the compiler.
    runtime = lines[lines.index(froms[-1]) :]
    assert not any("build-essential" in line for line in runtime)
    assert any("postgresql-client" in line for line in runtime)  # for `receipts backup`


def test_agent_dockerfile_targets_arm64_bookworm_non_root() -> None:
    lines = _dockerfile("agent.Dockerfile")
    froms = [line for line in lines if line.startswith("FROM ")]
    assert froms and all("--platform=linux/arm64" in f and "bookworm" in f for f in froms)
    assert any("archive.raspberrypi.com" in line for line in lines)
    assert any("python3-picamera2" in line for line in lines)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert any(line.startswith("HEALTHCHECK") for line in lines)


def test_mosquitto_acl_is_the_generated_one_and_confines_devices() -> None:
    assert (INFRA / "mosquitto" / "acl").read_text() == acl.render()
    patterns = [line for line in acl.render().splitlines() if line.startswith("pattern")]
    assert patterns and all("rm/v1/dev/%u/" in line for line in patterns)
    assert not any("#" in line.split()[-1] for line in patterns)


def test_mosquitto_tls_listener_refuses_anonymous() -> None:
    conf = (INFRA / "mosquitto" / "mosquitto.conf").read_text()
    tls = conf.split("listener 8883", 1)[1].split("\nlistener ", 1)[0]
    for key in ("cafile", "certfile", "keyfile", "password_file", "acl_file"):
        assert f"\n{key} " in tls, key
    assert "allow_anonymous false" in tls
    assert "listener 1880 127.0.0.1" in conf  # healthcheck listener is loopback only


def test_dev_certs_script_makes_a_chain_that_verifies(tmp_path: Path) -> None:
    script = INFRA / "mosquitto" / "make-dev-certs.sh"
    subprocess.run([str(script), str(tmp_path), "mosquitto"], check=True, capture_output=True)
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", tmp_path / "ca.crt", tmp_path / "server.crt"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr
    text = subprocess.run(
        ["openssl", "x509", "-in", tmp_path / "server.crt", "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "DNS:mosquitto" in text
