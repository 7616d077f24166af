"""The agent's YAML config: strict, clear errors, secrets kept out, paths from the file's folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edge_agent.capture import FolderSourceConfig, OpenCVSourceConfig
from edge_agent.config import AgentConfig, ConfigError, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "edge_agent" / "agent.example.yaml"


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def minimal(**extra: object) -> dict[str, object]:
    return {"device_id": "scanner-01", "source": {"type": "folder", "path": "inbox"}, **extra}


def test_example_config_is_valid() -> None:
    config = load_config(EXAMPLE)
    assert config.device_id == "scanner-01"
    assert isinstance(config.source, FolderSourceConfig)
    assert config.source.path == EXAMPLE.parent / "inbox"
    assert config.outbox.path == EXAMPLE.parent / "outbox.sqlite3"


def test_relative_paths_are_taken_from_the_config_folder(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, minimal(outbox={"path": "q/o.db"})))
    assert config.outbox.path == tmp_path / "q" / "o.db"


def test_unknown_key_names_the_key_and_the_allowed_ones(tmp_path: Path) -> None:
    data = minimal(broker={"hots": "x"})
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, data))
    text = str(err.value)
    assert "broker.hots: unknown key" in text
    assert "host" in text and "port" in text and "password_env" in text


def test_unknown_key_inside_a_source_lists_that_sources_keys(tmp_path: Path) -> None:
    data = minimal(source={"type": "opencv", "devise": 0})
    with pytest.raises(ConfigError, match=r"source\.opencv\.devise: unknown key.*device"):
        load_config(write(tmp_path, data))


def test_bad_source_type_lists_the_allowed_types(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, minimal(source={"type": "webcam"})))
    assert "source" in str(err.value)
    for allowed in ("folder", "opencv", "picamera2"):
        assert allowed in str(err.value)


def test_bad_literal_and_range_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, minimal(image_format="gif", image_quality=0)))
    text = str(err.value)
    assert "image_format" in text and "'jpeg'" in text and "'gif'" in text
    assert "image_quality" in text


def test_password_in_yaml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="password_env"):
        load_config(write(tmp_path, minimal(broker={"username": "u", "password": "hunter2"})))


def test_password_from_env_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"RM_TEST_PW.*not set"):
        load_config(write(tmp_path, minimal(broker={"password_env": "RM_TEST_PW"})))
    monkeypatch.setenv("RM_TEST_PW", "s3cret")
    config = load_config(write(tmp_path, minimal(broker={"password_env": "RM_TEST_PW"})))
    assert config.broker.password() == "s3cret"
    assert "s3cret" not in repr(config)
    (tmp_path / "pw").write_text("from-file\n")
    config = load_config(write(tmp_path, minimal(broker={"password_file": "pw"})))
    assert config.broker.password() == "from-file"
    with pytest.raises(ConfigError, match=r"broker.password_file"):
        load_config(write(tmp_path, minimal(broker={"password_file": "nope"})))


def test_tls_files_must_exist_and_come_in_pairs(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    (tmp_path / "c.pem").write_text("x")
    with pytest.raises(ConfigError, match=r"broker.tls.ca_file"):
        load_config(write(tmp_path, minimal(broker={"tls": {"ca_file": "missing.pem"}})))
    with pytest.raises(ConfigError, match=r"cert_file and key_file"):
        load_config(write(tmp_path, minimal(broker={"tls": {"cert_file": "c.pem"}})))
    config = load_config(write(tmp_path, minimal(broker={"tls": {"ca_file": "ca.pem"}})))
    assert config.broker.tls is not None and config.broker.tls.ca_file == tmp_path / "ca.pem"


def test_missing_required_and_bad_device_id(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="source: required but missing"):
        load_config(write(tmp_path, {"device_id": "x"}))
    with pytest.raises(ConfigError, match=r"device_id.*invalid device id"):
        load_config(write(tmp_path, minimal(device_id="has space")))


def test_not_yaml_or_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("device_id: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
    path.write_text("- a list")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_opencv_device_index_or_path() -> None:
    config = AgentConfig.model_validate(minimal(source={"type": "opencv", "device": 2}))
    assert isinstance(config.source, OpenCVSourceConfig) and config.source.device == 2
    # every field of every section documents itself
    for model in (AgentConfig, FolderSourceConfig, OpenCVSourceConfig):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has a description"
