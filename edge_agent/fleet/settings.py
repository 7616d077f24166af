"""The settings a server may change at run time, and how a desired set is applied to the config.

The whitelist is `RUNTIME_SETTINGS`: a key is the setting's path in the agent's YAML config
(``trigger.change_fraction``), so the file and the shadow speak one vocabulary. Each value is
validated by the very pydantic field that validates the file, so the limits are defined once.

A desired set is declarative: it lists every override the server wants. `resolve` takes the
config from the file (the base), the overrides in force and a desired set, and returns the new
overrides and the keys it refused with a reason each:

- a key not in the whitelist, or a value its field refuses: rejected, and the value in force
  before (override or file value) stays;
- a key with value ``null``, or a key in force but absent from the desired set: back to the
  file's value;
- any other key: applied.

`apply(base, overrides)` gives the effective `AgentConfig`; `reported(config)` the value of every
runtime setting in it, for ``config/reported``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

if TYPE_CHECKING:
    from edge_agent.config import AgentConfig

#: Key -> what it does (shown in diagnostics and OPERATIONS.md).
RUNTIME_SETTINGS: dict[str, str] = {
    "trigger.change_fraction": "Trigger sensitivity: share of pixels that must change for a "
    "receipt to count as placed (smaller fires on smaller receipts).",
    "trigger.still_frames": "Consecutive still frames before the trigger fires.",
    "pipeline.threads": "CPU threads of the OCR engine (the pipeline is rebuilt).",
    "upload_images": "Send the rectified image with each receipt (true/false).",
    "image_quality": "JPEG/WebP quality of uploaded images, 1-100.",
    "telemetry.interval_s": "Seconds between heartbeats, 1-3600.",
    "quiet_hours": 'No scanning and no buzzer: {"start": "22:00", "end": "06:00"} or null.',
}


def _field_adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    field = model.model_fields[name]
    annotated: Any = Annotated[field.annotation, field]
    return TypeAdapter(annotated)


def _section_model(config: BaseModel, section: str) -> type[BaseModel]:
    value = getattr(config, section)
    if not isinstance(value, BaseModel):
        raise TypeError(f"{section} is not a config section")
    return type(value)


def validate_value(base: AgentConfig, key: str, value: Any) -> Any:
    """`value` as the config field behind `key` validates it; ValueError says why not."""
    if key not in RUNTIME_SETTINGS:
        raise ValueError(
            "not a setting this device can change at run time; allowed: "
            + ", ".join(sorted(RUNTIME_SETTINGS))
        )
    section, _, name = key.rpartition(".")
    model = _section_model(base, section) if section else type(base)
    try:
        return _field_adapter(model, name).validate_python(value)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ValueError(f"{where + ': ' if where else ''}{msg} (got {value!r})") from None


def apply(base: AgentConfig, overrides: Mapping[str, Any]) -> AgentConfig:
    """The effective config: `base` with each (already validated) override set."""
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        section, _, name = key.rpartition(".")
        if section:
            sections.setdefault(section, {})[name] = value
        else:
            top[name] = value
    for section, values in sections.items():
        top[section] = getattr(base, section).model_copy(update=values)
    return base.model_copy(update=top)


def resolve(
    base: AgentConfig, in_force: Mapping[str, Any], desired: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """New overrides and rejected keys (with reasons) for a desired set; see the module doc."""
    overrides: dict[str, Any] = {}
    rejected: dict[str, str] = {}
    for key, value in desired.items():
        if value is None:
            continue  # back to the file's value
        try:
            overrides[key] = validate_value(base, key, value)
        except ValueError as exc:
            rejected[key] = str(exc)
            if key in in_force:
                overrides[key] = in_force[key]
    return overrides, rejected


def reported(config: AgentConfig) -> dict[str, Any]:
    """The value in force of every runtime setting, JSON-ready."""
    out: dict[str, Any] = {}
    for key in RUNTIME_SETTINGS:
        value: Any = config
        for part in key.split("."):
            value = getattr(value, part)
        out[key] = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    return out


def dump_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides as JSON-ready values (for the state file)."""
    return {
        k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v
        for k, v in overrides.items()
    }


__all__ = [
    "RUNTIME_SETTINGS",
    "apply",
    "dump_overrides",
    "reported",
    "resolve",
    "validate_value",
]
