"""The agent's configuration: one YAML file, validated once at start, unknown keys refused.

`load_config(path)` returns an `AgentConfig` or raises `ConfigError` whose message lists every
problem as ``key.path: what is wrong`` (for an unknown key: the keys allowed there). Relative
paths in the file are taken from the file's folder. Secrets never sit in the file: the broker
password comes from the environment variable named by ``broker.password_env`` or the file
named by ``broker.password_file``. See ``agent.example.yaml`` for every section.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from edge_agent.capture import SourceConfig
from edge_agent.configbase import StrictModel
from edge_agent.fleet.config import FleetConfig
from edge_agent.logging_setup import LoggingConfig
from edge_agent.mqtt import BrokerConfig
from edge_agent.ota.config import OtaConfig
from edge_agent.outbox import OutboxConfig
from edge_agent.quiethours import QuietHours
from edge_agent.trigger import TriggerConfig
from firmware.gpio import GpioConfig
from models.pipeline import PipelineConfig
from models.protocol import validate_device_id


class ConfigError(ValueError):
    """The config file can't be used; the message names each bad key and what is allowed."""


class TelemetryConfig(StrictModel):
    """The heartbeat on `telemetry`."""

    interval_s: float = Field(default=60.0, ge=1, le=3600, description="Seconds between beats.")


class AgentConfig(StrictModel):
    """Everything a scanner needs to run."""

    device_id: str = Field(description="This scanner's id: its MQTT client id and topic level.")
    broker: BrokerConfig = Field(default_factory=BrokerConfig, description="The MQTT broker.")
    source: SourceConfig = Field(description="Where images come from: folder, opencv, picamera2.")
    trigger: TriggerConfig = Field(
        default_factory=TriggerConfig, description="Placement trigger for live sources."
    )
    pipeline: PipelineConfig = Field(
        default_factory=PipelineConfig, description="The read pipeline (models.pipeline)."
    )
    outbox: OutboxConfig = Field(
        default_factory=OutboxConfig, description="Durable queue of scans awaiting the broker."
    )
    telemetry: TelemetryConfig = Field(
        default_factory=TelemetryConfig, description="Heartbeat settings."
    )
    logging: LoggingConfig = Field(
        default_factory=LoggingConfig, description="Log format (JSON/text), file and rotation."
    )
    upload_images: bool = Field(
        default=True, description="Send the rectified image with each receipt."
    )
    image_format: Literal["jpeg", "webp", "png"] = Field(
        default="jpeg", description="Encoding of uploaded images."
    )
    image_quality: int = Field(
        default=85, ge=1, le=100, description="JPEG/WebP quality of uploaded images."
    )
    quiet_hours: QuietHours | None = Field(
        default=None, description="Daily span without scanning or buzzer, e.g. 22:00-06:00."
    )
    fleet: FleetConfig = Field(
        default_factory=FleetConfig,
        description="Fleet management: applied config, command journal, reboot command.",
    )
    ota: OtaConfig | None = Field(
        default=None, description="Over-the-air updates; absent: ota commands are refused."
    )
    gpio: GpioConfig | None = Field(
        default=None, description="Button, status LED and buzzer (BCM pins); absent: none."
    )

    @model_validator(mode="before")
    @classmethod
    def _sections_with_paths(cls, data: Any) -> Any:
        """Validate these sections even when absent, so their paths follow the file's folder."""
        if isinstance(data, dict):
            data = {"fleet": {}, "outbox": {}} | data
        return data

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, v: str) -> str:
        return validate_device_id(v)


def parse_config(data: Any, base_dir: Path | None = None, origin: str = "config") -> AgentConfig:
    """Validate already-parsed YAML data; relative paths are taken from `base_dir`."""
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping of settings at the top level")
    try:
        return AgentConfig.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        lines = [f"  {_describe(err)}" for err in exc.errors()]
        raise ConfigError(f"{origin} is not a valid agent config:\n" + "\n".join(lines)) from exc


def load_config(path: Path) -> AgentConfig:
    """Read and validate the agent's YAML config file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    return parse_config(data, base_dir=path.resolve().parent, origin=str(path))


def _describe(err: Any) -> str:
    loc = tuple(err["loc"])
    key = ".".join(str(p) for p in loc) or "<top level>"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
        return f"{key}: unknown key{hint}"
    if err["type"] == "missing":
        return f"{key}: required but missing"
    if err["type"] in {"literal_error", "enum"}:
        return f"{key}: {msg} (got {err.get('input')!r})"
    return f"{key}: {msg}"


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """Field names of the config section at `loc` (following union tags), if it can be found."""
    current: list[type[BaseModel]] = [AgentConfig]
    for part in loc:
        tagged = [m for m in current if part in _tags(m)]
        if len(current) > 1 and tagged:  # a discriminated union's tag, e.g. source.folder.<key>
            current = tagged
            continue
        if len(current) != 1 or not isinstance(part, str) or part not in current[0].model_fields:
            return []
        current = _models_in(current[0].model_fields[part].annotation)
    return sorted(current[0].model_fields) if len(current) == 1 else []


def _tags(model: type[BaseModel]) -> tuple[Any, ...]:
    field = model.model_fields.get("type")
    return typing.get_args(field.annotation) if field is not None else ()


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The config models an annotation allows (unwrapping Annotated, unions and Optional)."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return [m for a in typing.get_args(annotation) for m in _models_in(a)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []
