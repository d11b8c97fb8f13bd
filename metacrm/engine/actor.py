"""Who does an operation: passed explicitly to every engine call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["SYSTEM", "Actor"]


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    username: str
    is_admin: bool = False
    language: str = "zh"
    department_id: int | None = None
    display_name: str = ""  # how people are shown to others (张伟), not their login (zhang)

    @property
    def is_system(self) -> bool:
        return self.user_id is None

    @property
    def uid(self) -> int:
        """The user's id, for work scoped to a person. The system actor has none: its
        access is unrestricted, so no scope ever asks for it."""
        if self.user_id is None:
            raise ValueError("the system actor is not a user")
        return self.user_id


SYSTEM: Final[Actor] = Actor(user_id=None, username="system", is_admin=True)
