"""Settings from the environment, with defaults that work on a fresh machine."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path


def instance_dir() -> Path:
    return Path(os.environ.get("METACRM_INSTANCE", "instance"))


def _secret_key(instance: Path) -> str:
    if os.environ.get("METACRM_SECRET_KEY"):
        return os.environ["METACRM_SECRET_KEY"]
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


@dataclass
class Settings:
    database_url: str = ""
    redis_url: str | None = None
    secret_key: str = ""
    metadata_poll_seconds: float = 1.0
    timezone: str | None = None
    instance_dir: Path = field(default_factory=instance_dir)
    testing: bool = False
    token_days: float = 7.0  # how long an API token lives
    behind_proxy: bool = False  # trust one proxy's X-Forwarded-For/-Proto/-Host

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        instance = Path(overrides.pop("instance_dir", None) or instance_dir())
        settings = cls(
            database_url=os.environ.get("METACRM_DATABASE_URL")
            or f"sqlite:///{(instance / 'metacrm.db').resolve()}",
            redis_url=os.environ.get("METACRM_REDIS_URL") or None,
            metadata_poll_seconds=float(os.environ.get("METACRM_METADATA_POLL", "1.0")),
            timezone=os.environ.get("METACRM_TIMEZONE") or None,
            instance_dir=instance,
            token_days=float(os.environ.get("METACRM_TOKEN_DAYS") or 7),
            behind_proxy=os.environ.get("METACRM_PROXY", "").lower() in ("1", "true", "yes"),
        )
        for key, value in overrides.items():
            setattr(settings, key, value)
        if not settings.secret_key:
            settings.secret_key = _secret_key(instance)
        if settings.database_url.startswith("sqlite:///"):
            Path(settings.database_url[len("sqlite:///"):]).parent.mkdir(parents=True,
                                                                          exist_ok=True)
        return settings
