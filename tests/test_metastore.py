"""The metadata store: versioned documents in two layers, seen by every process."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine import instance
from metacrm.engine.schema import metastore
from metacrm.engine.systables import meta_document, meta_version


def add_overlay(engine, key: str, content: dict) -> None:
    with Session(engine) as session, session.begin():
        session.execute(sa.insert(meta_document).values(
            kind="object", doc_key=key, layer="overlay", template=None, content=content,
            updated_at=clock.now()))
        metastore.bump_version(session, "admin", f"local change to {key}")


def test_installing_writes_a_version_with_a_snapshot(engine):
    with Session(engine) as session:
        version, schema_version = metastore.read_version(session)
        row = session.execute(sa.select(meta_version)).one()
    assert (version, schema_version) == (1, 1)
    assert row.summary == "install template sample 1.0" and row.actor == "system"
    assert {d["doc_key"] for d in row.snapshot if d["kind"] == "object"} == {
        "customer", "contact", "opportunity", "product", "quote", "quote_line", "contract",
        "payment"}


def test_template_documents_are_the_base_layer(engine):
    with Session(engine) as session:
        layers = session.execute(sa.select(meta_document.c.layer).distinct()).scalars().all()
    assert layers == ["base"]


def test_local_changes_overlay_the_template(engine):
    add_overlay(engine, "customer", {"label": {"zh": "客户档案"},
                                     "fields": [{"name": "phone", "required": True}]})
    with Session(engine) as session:
        customer = metastore.load_registry(session).objects["customer"]
    assert customer.label.zh == "客户档案" and customer.label.en == "Customer"
    assert customer.all_fields["phone"].required


def test_reinstalling_the_template_keeps_local_changes(engine):
    add_overlay(engine, "customer", {"label": {"zh": "客户档案"}})
    instance.install(engine, ["object_defs/sample"])
    with Session(engine) as session:
        assert metastore.load_registry(session).objects["customer"].label.zh == "客户档案"
        assert metastore.read_version(session)[0] == 3


def test_every_item_has_a_stable_key(registry):
    customer = registry.objects["customer"]
    assert customer.key == "customer"
    assert customer.all_fields["level"].key == "level"
    assert [o.key for o in customer.all_fields["level"].options] == ["A", "B", "C"]
    assert [b.key for b in customer.business_types] == ["standard", "key_account"]


def test_another_process_sees_a_new_version_without_restart(engine):
    first = metastore.RegistryCache(engine, poll_seconds=0)
    second = metastore.RegistryCache(engine, poll_seconds=0)
    assert first.get().version == second.get().version == 1
    add_overlay(engine, "customer", {"label": {"zh": "客户档案"}})
    assert second.get().version == 2
    assert second.get().objects["customer"].label.zh == "客户档案"


def test_a_warm_cache_runs_no_metadata_query(engine, count_queries):
    cache = metastore.RegistryCache(engine, poll_seconds=60)
    cache.get()
    with count_queries() as counter:
        for _ in range(10):
            cache.get()
    assert counter.count == 0


def test_registries_are_rebuilt_not_mutated(engine):
    cache = metastore.RegistryCache(engine, poll_seconds=0)
    before = cache.get()
    add_overlay(engine, "customer", {"label": {"zh": "客户档案"}})
    after = cache.get()
    assert after is not before and after.metadata is not before.metadata
    assert before.objects["customer"].label.zh == "客户"
