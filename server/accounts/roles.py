"""Roles of a user in an organisation and what each may do (each role includes the ones below)."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls(value.strip().lower())
        except ValueError as exc:
            allowed = ", ".join(r.value for r in cls)
            raise ValueError(f"unknown role {value!r}; choose one of {allowed}") from exc


_RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}

#: The least role for each action the dashboard offers.
READ = Role.VIEWER
EDIT_RECEIPTS = Role.MEMBER
MANAGE_USERS = Role.ADMIN
