"""Which rows of every table belong to one organisation, and which columns never leave.

Every model module of the server (``server.<package>.models``, plus ``server.db.models``) is
imported, so a table added later is covered without touching this file. A table belongs to an
organisation through its ``organization_id`` column, or through a foreign key to a table that
does (devices -> broker accounts, users -> web sessions...), followed to any depth;
``dead_letters`` through the device id in its text column.
"""

from __future__ import annotations

import importlib
import pkgutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Table, select

import server
from server.db.base import Base

#: Never exported: secrets (sessions, reset tokens) and what outlives the organisation.
EXPORT_SKIPPED = frozenset({"web_sessions", "password_resets"})
#: Never scoped to an organisation (kept when one is deleted).
UNSCOPED = frozenset({"alembic_version", "organization_deletions"})


def load_models() -> None:
    """Import every model module of the server, so `Base.metadata` knows every table."""
    importlib.import_module("server.db.models")
    for info in pkgutil.iter_modules(server.__path__):
        if info.ispkg:
            try:
                importlib.import_module(f"server.{info.name}.models")
            except ModuleNotFoundError as exc:
                if exc.name != f"server.{info.name}.models":
                    raise


def secret_column(name: str) -> bool:
    """Columns left out of an export: hashes of credentials, secrets, CSRF tokens."""
    return (
        "password" in name
        or "secret" in name
        or name.endswith("_hash")
        or name in {"csrf_token", "token", "key"}
    )


Condition = Callable[[uuid.UUID], ColumnElement[bool]]


@dataclass(frozen=True)
class ScopedTable:
    table: Table
    where: Condition


def _equals(col: ColumnElement[uuid.UUID]) -> Condition:
    return lambda org: col == org


def _through(
    child: ColumnElement[object], ref: ColumnElement[object], parent: Condition
) -> Condition:
    return lambda org: child.in_(select(ref).where(parent(org)))


def scoped_tables() -> list[ScopedTable]:
    """Every table holding rows of an organisation (the organisation's own row first)."""
    load_models()
    tables = [t for t in Base.metadata.sorted_tables if t.name not in UNSCOPED]
    scoped: dict[str, Condition] = {}
    for t in tables:
        if t.name == "organizations":
            scoped[t.name] = _equals(t.c.id)
        elif "organization_id" in t.c:
            scoped[t.name] = _equals(t.c.organization_id)
    changed = True
    while changed:
        changed = False
        for t in tables:
            if t.name in scoped:
                continue
            # Prefer a key that is never null: every row is reached through it.
            for fk in sorted(
                t.foreign_keys, key=lambda f: (bool(f.parent.nullable), f.parent.name)
            ):
                parent = fk.column.table
                if parent.name in scoped and parent is not t:
                    scoped[t.name] = _through(fk.parent, fk.column, scoped[parent.name])
                    changed = True
                    break
    if "dead_letters" in Base.metadata.tables and "devices" in Base.metadata.tables:
        letters, devices = Base.metadata.tables["dead_letters"], Base.metadata.tables["devices"]
        scoped["dead_letters"] = _through(
            letters.c.device_id, devices.c.device_id, _equals(devices.c.organization_id)
        )
    return [ScopedTable(t, scoped[t.name]) for t in tables if t.name in scoped]
