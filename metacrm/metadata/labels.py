"""Bilingual labels: every label in metadata is ``{en, zh}``."""

from __future__ import annotations

from dataclasses import dataclass

LANGUAGES = ("zh", "en")


@dataclass(frozen=True)
class Label:
    en: str
    zh: str

    @classmethod
    def of(cls, raw: dict | None, fallback: str = "") -> Label:
        raw = raw or {}
        return cls(en=raw.get("en", fallback), zh=raw.get("zh", raw.get("en", fallback)))

    def get(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en

    def as_dict(self) -> dict[str, str]:
        return {"en": self.en, "zh": self.zh}


def joined(labels: list[Label]) -> Label:
    """Labels listed in one, for messages: "a, b" in English, "a、b" in Chinese."""
    return Label(", ".join(x.en for x in labels), "、".join(x.zh for x in labels))
