"""The records service: the one write path, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from metacrm.engine.errors import RecordNotFound, StaleVersion, ValidationFailed
from metacrm.engine.systables import sys_audit
from metacrm.engine.writing import records


def count(session, registry, object_name: str) -> int:
    return session.execute(sa.select(sa.func.count()).select_from(
        registry.table(object_name))).scalar()


def test_create_fills_defaults_and_system_columns(make_record, admin):
    row = make_record("customer", name="Acme")
    assert row["level"] == "B" and row["deal_status"] == "open" and row["locked"] is False
    assert row["owner"] == admin.user_id and row["created_by"] == admin.user_id
    assert row["version"] == 1 and row["business_type"] == "standard"
    assert row["created_at"].tzinfo is not None


def test_auto_numbers_follow_the_pattern_and_never_repeat(make_record):
    first = make_record("customer", name="A")["code"]
    second = make_record("customer", name="B")["code"]
    year = dt.date.today().year
    assert first == f"KH-{year}-00001" and second == f"KH-{year}-00002"


def test_values_are_stored_exactly(session, registry, make_record, admin):
    row = make_record("customer", name="Exact", annual_revenue="12345678901234.56",
                      next_contact_at="2026-03-01T09:30:00+08:00")
    stored = records.get(session, registry, "customer", row["id"], actor=admin)
    assert stored["annual_revenue"] == Decimal("12345678901234.56")
    assert stored["next_contact_at"] == dt.datetime(2026, 3, 1, 1, 30, tzinfo=dt.UTC)


def test_required_fields_are_enforced(session, registry, admin):
    with pytest.raises(ValidationFailed) as caught:
        records.create(session, registry, "contact", {"title": "CEO"}, actor=admin)
    assert caught.value.fields == {"name": "is required", "customer": "is required"}


def test_every_invalid_field_is_reported(session, registry, admin):
    with pytest.raises(ValidationFailed) as caught:
        records.create(session, registry, "customer",
                       {"name": "x" * 201, "level": "Z", "employees": "many", "bogus": 1},
                       actor=admin)
    assert caught.value.fields == {
        "name": "is longer than 200 characters",
        "level": "'Z' is not one of the options (A, B, C)",
        "employees": "must be a whole number",
        "bogus": "is not a field of this object",
    }


def test_lookup_target_must_exist(session, registry, admin):
    with pytest.raises(ValidationFailed) as caught:
        records.create(session, registry, "contact", {"name": "Li", "customer": 999},
                       actor=admin)
    assert caught.value.fields == {"customer": "no customer record with id 999"}


def test_lookup_to_a_deleted_record_is_refused(session, registry, admin, make_record):
    customer = make_record("customer", name="Gone")
    records.delete(session, registry, "customer", customer["id"], actor=admin)
    with pytest.raises(ValidationFailed, match="some values"):
        records.create(session, registry, "contact", {"name": "Li", "customer": customer["id"]},
                       actor=admin)


def test_owner_must_be_an_active_user(session, registry, admin):
    with pytest.raises(ValidationFailed) as caught:
        records.create(session, registry, "customer", {"name": "A", "owner": 4242}, actor=admin)
    assert caught.value.fields == {"owner": "no active user with id 4242"}


def test_unique_values_are_refused_with_the_holder(make_record, session, registry, admin):
    first = make_record("customer", name="Acme")
    with pytest.raises(ValidationFailed) as caught:
        records.create(session, registry, "customer", {"name": "Acme"}, actor=admin)
    assert caught.value.fields == {"name": f"'Acme' is already used by record {first['id']}"}


def test_unique_holds_against_the_recycle_bin(make_record, session, registry, admin):
    first = make_record("customer", name="Acme")
    records.delete(session, registry, "customer", first["id"], actor=admin)
    with pytest.raises(ValidationFailed, match="some values") as caught:
        records.create(session, registry, "customer", {"name": "Acme"}, actor=admin)
    assert "in the recycle bin" in caught.value.fields["name"]


def test_business_type_limits_picklist_values(session, registry, admin):
    with pytest.raises(ValidationFailed) as caught:
        records.create(session, registry, "customer",
                       {"name": "A", "business_type": "key_account", "level": "C"}, actor=admin)
    assert caught.value.fields == {"level": "'C' is not available for business type key_account"}


def test_unknown_business_type_is_refused(session, registry, admin):
    with pytest.raises(ValidationFailed) as caught:
        records.create(session, registry, "customer", {"name": "A", "business_type": "vip"},
                       actor=admin)
    assert caught.value.fields == {"business_type": "'vip' is not a business type of this object"}


def test_update_changes_fields_and_bumps_the_version(make_record, session, registry, admin):
    row = make_record("customer", name="Acme")
    updated = records.update_record(session, registry, "customer", row["id"], {"level": "A"},
                                    actor=admin, version=1)
    session.commit()
    assert updated["version"] == 2 and updated["level"] == "A"
    assert records.get(session, registry, "customer", row["id"], actor=admin)["level"] == "A"


def test_stale_version_is_a_conflict_and_overwrites_nothing(make_record, session, registry,
                                                            admin):
    row = make_record("customer", name="Acme")
    records.update_record(session, registry, "customer", row["id"], {"level": "A"}, actor=admin,
                          version=1)
    session.commit()
    with pytest.raises(StaleVersion):
        records.update_record(session, registry, "customer", row["id"], {"level": "C"},
                              actor=admin, version=1)
    session.rollback()
    assert records.get(session, registry, "customer", row["id"], actor=admin)["level"] == "A"


def test_clearing_a_required_field_is_refused(make_record, session, registry, admin):
    row = make_record("customer", name="Acme")
    with pytest.raises(ValidationFailed) as caught:
        records.update_record(session, registry, "customer", row["id"], {"name": ""},
                              actor=admin, version=1)
    assert caught.value.fields == {"name": "is required"}


def test_generated_and_system_fields_cannot_be_written(make_record, session, registry, admin):
    row = make_record("customer", name="Acme")
    with pytest.raises(ValidationFailed) as caught:
        records.update_record(session, registry, "customer", row["id"],
                              {"code": "X", "deleted": True}, actor=admin, version=1)
    assert caught.value.fields == {"code": "is generated by the system and cannot be set",
                                   "deleted": "is not a field of this object"}


def test_delete_moves_to_the_recycle_bin_and_restore_brings_back(make_record, session,
                                                                 registry, admin):
    row = make_record("customer", name="Acme")
    records.delete(session, registry, "customer", row["id"], actor=admin)
    session.commit()
    with pytest.raises(RecordNotFound):
        records.get(session, registry, "customer", row["id"], actor=admin)
    restored = records.restore(session, registry, "customer", row["id"], actor=admin)
    session.commit()
    assert restored["name"] == "Acme" and restored["version"] == 3


def test_deleting_twice_is_not_found(make_record, session, registry, admin):
    row = make_record("customer", name="Acme")
    records.delete(session, registry, "customer", row["id"], actor=admin)
    with pytest.raises(RecordNotFound):
        records.delete(session, registry, "customer", row["id"], actor=admin)


def test_audit_log_keeps_field_level_diffs(make_record, session, registry, admin):
    row = make_record("customer", name="Acme", level="C")
    records.update_record(session, registry, "customer", row["id"],
                          {"level": "A", "annual_revenue": "10"}, actor=admin, version=1)
    records.delete(session, registry, "customer", row["id"], actor=admin)
    records.restore(session, registry, "customer", row["id"], actor=admin)
    session.commit()
    entries = records.history(session, registry, "customer", row["id"], actor=admin)
    assert [e["action"] for e in entries] == ["restore", "delete", "update", "create"]
    assert entries[2]["changes"] == {"level": ["C", "A"], "annual_revenue": [None, "10.00"]}
    assert entries[3]["changes"]["name"] == [None, "Acme"]
    assert all(e["actor_id"] == admin.user_id for e in entries)


def test_a_rolled_back_change_leaves_no_audit_entry(make_record, session, registry, admin):
    row = make_record("customer", name="Acme")
    records.update_record(session, registry, "customer", row["id"], {"level": "A"},
                          actor=admin, version=1)
    session.rollback()
    assert session.execute(sa.select(sa.func.count()).select_from(sys_audit)
                           .where(sys_audit.c.action == "update")).scalar() == 0


def test_create_many_is_all_or_nothing(session, registry, admin):
    batch = [{"name": f"C{i}"} for i in range(5)] + [{"name": "bad", "level": "Z"}]
    with pytest.raises(ValidationFailed) as caught:
        records.create_many(session, registry, "customer", batch, actor=admin)
    session.rollback()
    assert caught.value.row == 5 and caught.value.fields == {
        "level": "'Z' is not one of the options (A, B, C)"}
    assert count(session, registry, "customer") == 0


def test_create_many_refuses_duplicates_inside_the_batch(session, registry, admin):
    with pytest.raises(ValidationFailed) as caught:
        records.create_many(session, registry, "customer", [{"name": "A"}, {"name": "A"}],
                            actor=admin)
    assert caught.value.fields == {"name": "the same value appears more than once in this batch"}


def test_create_many_numbers_every_record(session, registry, admin):
    rows = records.create_many(session, registry, "customer",
                               [{"name": f"C{i}"} for i in range(30)], actor=admin)
    session.commit()
    codes = [r["code"] for r in rows]
    assert len(set(codes)) == 30 and codes == sorted(codes)
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)


def test_numbers_reserved_in_blocks_are_never_given_twice(session, registry, admin):
    first = [records.create(session, registry, "customer", {"name": f"A{i}"}, actor=admin)
             ["code"] for i in range(5)]
    session.commit()
    later = records.create(session, registry, "customer", {"name": "B"}, actor=admin)["code"]
    session.commit()
    assert first == sorted(first) and len(set(first)) == 5
    assert later > first[-1]


def test_a_rolled_back_reservation_is_given_again(session, registry, admin):
    records.create(session, registry, "customer", {"name": "Gone"}, actor=admin)
    session.rollback()
    kept = records.create(session, registry, "customer", {"name": "Kept"}, actor=admin)
    session.commit()
    assert kept["code"].endswith("-00001")
