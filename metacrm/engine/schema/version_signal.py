"""Tells every process the current metadata version through Redis, when there is one.

Reading one Redis key per request is far cheaper than a database query, so with Redis
each process sees a new version on its very next request while the warm path still runs
no metadata query; without Redis the registry cache polls the database counter instead.
"""

from __future__ import annotations

import logging

import redis

__all__ = ["VersionSignal"]

log = logging.getLogger(__name__)
KEY = "metacrm:metadata_version"
# Only move forward: two publishers racing must not leave the older version behind.
_PUBLISH = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('GET', KEYS[1])
"""


class VersionSignal:
    """One key per database (its instance id), so a new database never sees old values."""

    def __init__(self, url: str):
        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._publish = self.client.register_script(_PUBLISH)

    @staticmethod
    def key(instance_id: str) -> str:
        return f"{KEY}:{instance_id}"

    def publish(self, instance_id: str, version: int) -> None:
        try:
            self._publish(keys=[self.key(instance_id)], args=[version])
        except redis.RedisError:
            log.warning("could not publish metadata version %s to Redis", version)

    def read(self, instance_id: str) -> int | None:
        """The published version, or None when Redis has none or cannot be reached."""
        try:
            raw = self.client.get(self.key(instance_id))
        except redis.RedisError:
            return None
        return int(raw) if raw is not None else None
