"""The base of every OCR engine plugin's config: strict, documented, chosen by `type`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class EngineConfigBase(BaseModel):
    """Each plugin subclasses this with ``type: Literal["<key>"]`` and its own fields.

    Unknown keys are errors, so a misspelt option is caught when the config is loaded.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
