"""Building blocks of the agent's YAML config: a strict base model and file paths."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo


class StrictModel(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _resolve(path: Path, info: ValidationInfo) -> Path:
    """Make a relative path relative to the config file's folder (given in the context)."""
    path = path.expanduser()
    base = (info.context or {}).get("base_dir")
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path


def _existing_file(path: Path, info: ValidationInfo) -> Path:
    path = _resolve(path, info)
    if not path.is_file():
        raise ValueError(f"file {path} does not exist or is not a file")
    return path


#: A path; relative ones are taken from the config file's folder.
ConfigPath = Annotated[Path, AfterValidator(_resolve)]
#: A path to a file that must exist when the config is loaded.
ExistingFile = Annotated[Path, AfterValidator(_existing_file)]
