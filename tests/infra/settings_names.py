"""The RM_* environment variable names server/settings.py accepts, found by walking its models."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _models(arg)]
    return []


def env_names() -> set[str]:
    from server.settings import Settings

    names: set[str] = set()

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            key = f"{prefix}{name.upper()}"
            nested = _models(info.annotation)
            if nested:
                for sub in nested:
                    walk(sub, f"{key}__")
            else:
                names.add(key)

    walk(Settings, "RM_")
    return names
