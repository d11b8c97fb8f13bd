"""Team members (团队成员) and transfer (转移) of records, on the organisation of ``orgchart``.

Everyone holds the built-in employee role ("own" for every operation) unless a test
gives them another, so what they see beyond their own records comes from the team.
"""

from __future__ import annotations

import datetime as dt

import pytest

from metacrm.engine.access import org, teams
from metacrm.engine.actor import SYSTEM
from metacrm.engine.errors import PermissionDenied, RecordNotFound, ValidationFailed
from metacrm.engine.flows import transfer
from metacrm.engine.reading import query
from metacrm.engine.writing import records

import orgchart

OBJECTS = orgchart.sample_objects()
TEAM_OBJECTS = [o for o, features in OBJECTS.items() if "team" in features]
OBJECTS_WITHOUT_TEAM = [o for o, features in OBJECTS.items() if "team" not in features]
TODAY = dt.date.today()



def listed(crm, object_name: str, key: str) -> set[int]:
    page = query.list_records(crm.session, crm.registry, object_name,
                              query.ListParams(page_size=50), actor=crm.actor(key))
    return {r["id"] for r in page.items}


def get(crm, object_name: str, rid: int, key: str) -> dict:
    return records.get(crm.session, crm.registry, object_name, rid, actor=crm.actor(key))


def edit(crm, object_name: str, rid: int, key: str) -> dict:
    return records.update_record(crm.session, crm.registry, object_name, rid,
                                 {"remark": f"by {key}"}, actor=crm.actor(key))


def add(crm, by: str, member: str, object_name: str = "customer", owner: str = "rep_east",
        access: str = "read", expires_on: dt.date | None = None) -> int:
    """``by`` adds ``member`` to the team of ``owner``'s record; returns the record's id."""
    rid = crm.org.records[object_name][owner]
    teams.add_member(crm.session, crm.registry, crm.actor(by),
                     crm.registry.object(object_name), rid, crm.user(member), access, expires_on)
    return rid


def members(crm, rid: int, object_name: str = "customer") -> list[tuple[str, str]]:
    names = {v: k for k, v in crm.org.users.items()}
    return [(names[m.user_id], m.access) for m in teams.members(
        crm.session, crm.registry, crm.actor("admin"), crm.registry.object(object_name), rid)]


# -- team members -------------------------------------------------------------------------
@pytest.mark.parametrize("object_name", TEAM_OBJECTS)
def test_a_read_only_member_sees_the_record_but_cannot_edit_it(crm, object_name):
    rid = add(crm, "rep_east", "rep_north", object_name)
    assert rid in listed(crm, object_name, "rep_north")
    assert get(crm, object_name, rid, "rep_north")["id"] == rid
    with pytest.raises(PermissionDenied):
        edit(crm, object_name, rid, "rep_north")


@pytest.mark.parametrize("object_name", TEAM_OBJECTS)
def test_a_read_write_member_can_edit_the_record(crm, object_name):
    rid = add(crm, "rep_east", "rep_north", object_name, access="write")
    assert edit(crm, object_name, rid, "rep_north")["remark"] == "by rep_north"


def test_the_owner_heads_the_member_list(crm):
    rid = add(crm, "rep_east", "rep_north")
    add(crm, "rep_east", "finance", access="write")
    assert members(crm, rid) == [("rep_east", "owner"), ("finance", "write"),
                                 ("rep_north", "read")]


def test_an_expired_membership_grants_nothing(crm):
    rid = crm.org.records["customer"]["rep_east"]
    teams.put_member(crm.session, crm.registry.object("customer"), rid, crm.user("rep_north"),
                     "write", TODAY - dt.timedelta(days=1), SYSTEM)
    assert rid not in listed(crm, "customer", "rep_north")
    with pytest.raises(RecordNotFound):
        get(crm, "customer", rid, "rep_north")


def test_a_membership_ending_today_still_grants(crm):
    rid = add(crm, "rep_east", "rep_north", expires_on=TODAY)
    assert rid in listed(crm, "customer", "rep_north")


def test_a_membership_cannot_end_in_the_past(crm):
    with pytest.raises(ValidationFailed) as failed:
        add(crm, "rep_east", "rep_north", expires_on=TODAY - dt.timedelta(days=1))
    assert set(failed.value.fields) == {"expires_on"}


def test_a_member_cannot_change_the_team(crm):
    add(crm, "rep_east", "rep_north", access="write")
    with pytest.raises(PermissionDenied):
        add(crm, "rep_north", "finance")


def test_someone_who_cannot_read_the_record_cannot_change_its_team(crm):
    with pytest.raises(RecordNotFound):
        add(crm, "finance", "rep_north")


def test_a_superior_whose_edit_scope_covers_the_record_manages_its_team(crm):
    crm.grant("manager", "edit", "own_and_subordinates", "customer",
              also={("customer", "read"): "own_and_subordinates"})
    rid = add(crm, "manager", "finance")
    assert ("finance", "read") in members(crm, rid)


def test_a_member_can_leave_the_team(crm):
    rid = add(crm, "rep_east", "rep_north")
    teams.remove_member(crm.session, crm.registry, crm.actor("rep_north"),
                        crm.registry.object("customer"), rid, crm.user("rep_north"))
    assert rid not in listed(crm, "customer", "rep_north")


def test_a_member_cannot_remove_another_member(crm):
    rid = add(crm, "rep_east", "rep_north")
    add(crm, "rep_east", "finance")
    with pytest.raises(PermissionDenied):
        teams.remove_member(crm.session, crm.registry, crm.actor("rep_north"),
                            crm.registry.object("customer"), rid, crm.user("finance"))


def test_the_owner_cannot_be_added_as_a_member(crm):
    with pytest.raises(ValidationFailed) as failed:
        add(crm, "rep_east", "rep_east")
    assert set(failed.value.fields) == {"user_id"}


@pytest.mark.parametrize("object_name", OBJECTS_WITHOUT_TEAM)
def test_an_object_without_the_team_feature_has_no_team(crm, object_name):
    with pytest.raises(PermissionDenied):
        add(crm, "admin", "rep_north", object_name)


# -- transfer -----------------------------------------------------------------------------
def move(crm, owner: str, to: str, *, by: str = "admin", object_name: str = "customer",
         **options) -> transfer.TransferResult:
    """``by`` transfers ``owner``'s record of the object to ``to``."""
    return transfer.transfer(crm.session, crm.registry, crm.actor(by),
                             crm.registry.object(object_name),
                             [crm.org.records[object_name][owner]], crm.user(to), **options)


def owner_of(crm, object_name: str, rid: int) -> int:
    return get(crm, object_name, rid, "admin")["owner"]


def test_a_transfer_gives_the_record_to_the_new_owner(crm):
    rid = crm.org.records["customer"]["rep_east"]
    assert move(crm, "rep_east", "rep_north").moved == {"customer": [rid]}
    assert owner_of(crm, "customer", rid) == crm.user("rep_north")


def test_the_department_of_a_transferred_record_follows_its_new_owner(crm):
    move(crm, "rep_east", "rep_north")
    rid = crm.org.records["customer"]["rep_east"]
    assert get(crm, "customer", rid, "admin")["department"] == crm.org.departments["华北"]


def test_the_old_owner_loses_the_record_by_default(crm):
    move(crm, "rep_east", "rep_north")
    rid = crm.org.records["customer"]["rep_east"]
    assert rid not in listed(crm, "customer", "rep_east")
    with pytest.raises(RecordNotFound):
        get(crm, "customer", rid, "rep_east")


def test_the_old_owner_can_stay_as_a_read_only_member(crm):
    move(crm, "rep_east", "rep_north", old_owner="read")
    rid = crm.org.records["customer"]["rep_east"]
    assert members(crm, rid) == [("rep_north", "owner"), ("rep_east", "read")]
    assert get(crm, "customer", rid, "rep_east")["id"] == rid
    with pytest.raises(PermissionDenied):
        edit(crm, "customer", rid, "rep_east")


def test_the_old_owner_can_stay_as_a_read_write_member(crm):
    move(crm, "rep_east", "rep_north", old_owner="write")
    rid = crm.org.records["customer"]["rep_east"]
    assert edit(crm, "customer", rid, "rep_east")["remark"] == "by rep_east"


def test_the_new_owner_is_no_longer_a_member(crm):
    rid = add(crm, "rep_east", "rep_north", access="write")
    move(crm, "rep_east", "rep_north")
    assert members(crm, rid) == [("rep_north", "owner")]


def test_a_transfer_carries_the_old_owners_related_records(crm):
    customer = crm.org.records["customer"]["rep_east"]
    others = records.create(crm.session, crm.registry, "contact",
                            {"name": "someone else's", "customer": customer,
                             "owner": crm.user("peer_east")}, actor=SYSTEM)["id"]
    result = move(crm, "rep_east", "rep_north",
                  cascade=["contact.customer", "opportunity.customer"])
    assert result.moved == {"customer": [customer],
                            "contact": [crm.org.records["contact"]["rep_east"]],
                            "opportunity": [crm.org.records["opportunity"]["rep_east"]]}
    assert owner_of(crm, "contact", others) == crm.user("peer_east")
    moved = get(crm, "contact", crm.org.records["contact"]["rep_east"], "admin")
    assert (moved["owner"], moved["department"]) == (crm.user("rep_north"),
                                                     crm.org.departments["华北"])


def test_related_records_stay_without_a_cascade(crm):
    move(crm, "rep_east", "rep_north")
    contact = crm.org.records["contact"]["rep_east"]
    assert owner_of(crm, "contact", contact) == crm.user("rep_east")


def test_a_cascade_moves_only_related_records_the_actor_may_transfer(crm):
    crm.grant("manager", "transfer", "own_and_subordinates", "customer",
              also={("*", "read"): "all", ("contact", "transfer"): "own"})
    result = move(crm, "rep_east", "rep_north", by="manager", cascade=["contact.customer"])
    assert result.moved == {"customer": [crm.org.records["customer"]["rep_east"]]}


def test_a_transfer_is_written_to_the_history(crm):
    move(crm, "rep_east", "rep_north")
    rid = crm.org.records["customer"]["rep_east"]
    latest = records.history(crm.session, crm.registry, "customer", rid,
                             actor=crm.actor("admin"))[0]
    assert (latest["action"], latest["changes"]) == (
        "transfer", {"owner": [crm.user("rep_east"), crm.user("rep_north")]})


def test_a_transfer_outside_the_transfer_scope_is_refused(crm):
    crm.grant("manager", "transfer", "own_and_subordinates", "customer",
              also={("customer", "read"): "all"})
    with pytest.raises(PermissionDenied):
        move(crm, "rep_north", "manager", by="manager")
    rid = crm.org.records["customer"]["rep_north"]
    assert owner_of(crm, "customer", rid) == crm.user("rep_north")


def test_a_transfer_of_a_record_outside_the_read_scope_is_not_found(crm):
    crm.grant("manager", "transfer", "all", "customer", also={("customer", "read"): "own"})
    with pytest.raises(RecordNotFound):
        move(crm, "rep_north", "manager", by="manager")


def test_an_unknown_cascade_is_refused_naming_it(crm):
    with pytest.raises(ValidationFailed) as failed:
        move(crm, "rep_east", "rep_north", cascade=["invoice.customer"])
    assert set(failed.value.fields) == {"cascade"}
    assert "invoice.customer" in failed.value.fields["cascade"]


def test_a_transfer_to_an_inactive_user_is_refused(crm):
    org.set_active(crm.session, crm.user("finance"), False)
    with pytest.raises(ValidationFailed) as failed:
        move(crm, "rep_east", "finance")
    assert set(failed.value.fields) == {"owner"}


def test_a_new_team_member_sees_the_record_in_the_same_session(crm):
    member = crm.give("rep_north", crm.role({("customer", "read"): "own"}))
    before = {r["id"] for r in query.list_records(crm.session, crm.registry, "customer",
                                                  query.ListParams(page_size=100),
                                                  actor=member).items}
    record = crm.org.records["customer"]["manager"]
    teams.add_member(crm.session, crm.registry, SYSTEM, crm.registry.object("customer"),
                     record, member.user_id, "read")
    after = {r["id"] for r in query.list_records(crm.session, crm.registry, "customer",
                                                 query.ListParams(page_size=100),
                                                 actor=member).items}
    assert after == before | {record}
