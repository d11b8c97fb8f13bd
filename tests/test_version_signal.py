"""With Redis, every process sees a new metadata version on its very next request."""

from __future__ import annotations

from sqlalchemy.orm import Session

from metacrm.config import Settings
from metacrm.engine import instance
from metacrm.engine.db import make_engine
from metacrm.engine.schema import metastore
from metacrm.engine.schema.version_signal import VersionSignal
from metacrm.ui.app import create_app


def app_process(database_url: str, redis_url: str, tmp_path, name: str):
    """An app with its own engine and registry cache, as a second web process has."""
    settings = Settings(database_url=database_url, redis_url=redis_url, secret_key="s",
                        metadata_poll_seconds=3600, instance_dir=tmp_path / name, testing=True)
    return create_app(settings, engine=make_engine(database_url))


def field_names(client, token: str) -> list[str]:
    body = client.get("/api/v1/objects/customer",
                      headers={"Authorization": f"Bearer {token}"}).get_json()
    return [f["name"] for f in body["fields"]]


def test_a_change_through_one_process_is_seen_by_another_on_its_next_request(
        engine, database_url, redis_url, admin, tmp_path, template_copy):
    first = app_process(database_url, redis_url, tmp_path, "one").test_client()
    second = app_process(database_url, redis_url, tmp_path, "two").test_client()
    token = first.post("/api/v1/auth/token", json={"username": "admin",
                                                   "password": "admin-password"}
                       ).get_json()["token"]
    assert "wechat" not in field_names(second, token)  # warm: cached for an hour
    text = (template_copy / "customer.yaml").read_text(encoding="utf-8")
    (template_copy / "customer.yaml").write_text(text.replace(
        "  - {name: remark,",
        "  - {name: wechat, type: text, label: {en: WeChat, zh: 微信}}\n  - {name: remark,"),
        encoding="utf-8")
    instance.install(engine, [template_copy], signal=VersionSignal(redis_url))
    assert "wechat" in field_names(second, token)


def test_a_warm_process_with_redis_runs_no_database_query_for_metadata(
        engine, database_url, redis_url, count_queries):
    cache = metastore.RegistryCache(engine, poll_seconds=0, signal=VersionSignal(redis_url))
    cache.get()
    with count_queries() as counter:
        for _ in range(5):
            cache.get()
    assert counter.count == 0


def test_published_versions_only_move_forward(engine, redis_url):
    signal = VersionSignal(redis_url)
    with Session(engine) as session:
        database = metastore.instance_id(session)
    signal.publish(database, 5)
    signal.publish(database, 3)
    assert signal.read(database) == 5
