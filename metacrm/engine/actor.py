"""Who does an operation: passed explicitly to every engine call."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    username: str
    is_admin: bool = False
    language: str = "zh"
    department_id: int | None = None

    @property
    def is_system(self) -> bool:
        return self.user_id is None


SYSTEM = Actor(user_id=None, username="system", is_admin=True)
