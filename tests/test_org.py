"""The organisation's invariants: one fixed root, no cycles, a super administrator left,
records following their owner's department, and the all-or-nothing CSV import of users."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from metacrm.engine.access import org, roles, user_import, users
from metacrm.engine.errors import ValidationFailed
from metacrm.engine.reading import query
from metacrm.engine.systables import sys_user
from metacrm.engine.writing import records

HEADER = "username,display_name,email,department,superior,roles,password\n"



def refused(action, *args, **kwargs) -> set[str]:
    """The fields a ValidationFailed names."""
    with pytest.raises(ValidationFailed) as failed:
        action(*args, **kwargs)
    return set(failed.value.fields)


def department(crm, name: str) -> int:
    return crm.org.departments[name]


def user(crm, username: str):
    return crm.session.execute(select(sys_user).where(sys_user.c.username == username)).first()


# -- the department tree ------------------------------------------------------------------
def test_the_root_department_cannot_be_deleted(crm):
    assert refused(org.delete_department, crm.session, department(crm, "全公司")) == \
        {"department"}


def test_the_root_department_cannot_move(crm):
    assert refused(org.update_department, crm.session, department(crm, "全公司"),
                   parent_id=department(crm, "财务部")) == {"parent_id"}


def test_there_is_only_one_top_department(crm):
    assert refused(org.create_department, crm.session, "另一个公司", None) == {"parent_id"}


@pytest.mark.parametrize("below", ["销售部", "华东", "上海"])
def test_a_department_cannot_move_under_itself_or_its_subtree(crm, below):
    assert refused(org.update_department, crm.session, department(crm, "销售部"),
                   parent_id=department(crm, below)) == {"parent_id"}


def test_a_department_moves_with_its_subtree(crm):
    org.update_department(crm.session, department(crm, "华东"),
                          parent_id=department(crm, "财务部"))
    assert org.subtree_ids(crm.session, department(crm, "财务部")) == {
        department(crm, d) for d in ("财务部", "华东", "上海")}


def test_a_department_scope_follows_a_move_at_once(crm):
    actor = crm.grant("manager", "read", "department_tree", "customer")
    org.update_department(crm.session, department(crm, "上海"),
                          parent_id=department(crm, "华北"))
    page = query.list_records(crm.session, crm.registry, "customer", query.ListParams(),
                              actor=actor)
    assert {r["id"] for r in page.items} == crm.org.ids("customer",
                                                        {"manager", "rep_east", "peer_east"})


@pytest.mark.parametrize("name", ["华东", "华北"])  # 华东 has 上海 below; 华北 has rep_north
def test_a_department_with_sub_departments_or_users_cannot_be_deleted(crm, name):
    assert refused(org.delete_department, crm.session, department(crm, name)) == {"department"}
    assert department(crm, name) in {d.id for d in org.departments(crm.session)}


def test_an_empty_department_can_be_deleted(crm):
    empty = org.create_department(crm.session, "西南", department(crm, "销售部"))
    org.delete_department(crm.session, empty)
    assert empty not in {d.id for d in org.departments(crm.session)}


# -- superiors ----------------------------------------------------------------------------
@pytest.mark.parametrize("superior", ["director", "manager", "rep_shanghai"])
def test_a_superior_cannot_be_the_user_or_a_subordinate(crm, superior):
    """rep_shanghai → manager → director: each of them is below (or is) the director."""
    assert refused(org.update_user, crm.session, crm.registry, crm.user("director"),
                   superior_id=crm.user(superior)) == {"superior_id"}


def test_a_superior_can_change_within_the_tree(crm):
    org.update_user(crm.session, crm.registry, crm.user("rep_north"),
                    superior_id=crm.user("manager"))
    assert user(crm, "rep_north").superior_id == crm.user("manager")


# -- the last super administrator ---------------------------------------------------------
def test_the_last_active_super_administrator_cannot_be_disabled(crm):
    assert refused(org.set_active, crm.session, crm.user("admin"), False) == {"roles"}


def test_the_last_active_super_administrator_keeps_the_role(crm):
    assert refused(roles.set_user_roles, crm.session, crm.user("admin"), ["member"]) == {"roles"}


def test_deleting_a_role_leaves_nobody_without_one(crm):
    role = roles.create_role(crm.session, "temporary", {"en": "Temporary", "zh": "临时"})
    roles.set_user_roles(crm.session, crm.user("director"), ["temporary"])
    roles.delete_role(crm.session, role)
    assert roles.roles_of(crm.session, crm.user("director")) == ["member"]


def test_a_new_user_needs_a_real_department_and_superior(crm):
    assert refused(users.create_user, crm.session, "newcomer", "password-123",
                   department_id=999_999, superior_id=999_999) == {"department_id",
                                                                    "superior_id"}


def test_a_disabled_super_administrator_does_not_count(crm):
    crm.give("director", "super_admin")
    org.set_active(crm.session, crm.user("director"), False)
    assert refused(org.set_active, crm.session, crm.user("admin"), False) == {"roles"}


def test_a_super_administrator_can_go_once_there_is_another(crm):
    crm.give("director", "super_admin")
    org.set_active(crm.session, crm.user("admin"), False)
    roles.set_user_roles(crm.session, crm.user("admin"), ["member"])
    assert not org.is_super_admin(crm.session, crm.user("admin"))


# -- moving a user ------------------------------------------------------------------------
def test_a_user_moving_department_takes_their_records_along(crm):
    org.update_user(crm.session, crm.registry, crm.user("rep_east"),
                    department_id=department(crm, "华北"))
    admin = crm.actor("admin")
    for object_name, owned in crm.org.records.items():
        moved = {o: records.get(crm.session, crm.registry, object_name, rid,
                                actor=admin)["department"] for o, rid in owned.items()}
        assert moved["rep_east"] == department(crm, "华北")
        assert moved["peer_east"] == department(crm, "华东")


def test_a_department_scope_sees_the_records_of_a_user_who_joined(crm):
    org.update_user(crm.session, crm.registry, crm.user("rep_east"),
                    department_id=department(crm, "华北"))
    actor = crm.grant("rep_north", "read", "department", "contact")
    page = query.list_records(crm.session, crm.registry, "contact", query.ListParams(),
                              actor=actor)
    assert {r["id"] for r in page.items} == crm.org.ids("contact", {"rep_north", "rep_east"})


# -- CSV import ---------------------------------------------------------------------------
def import_users(crm, *lines: str) -> user_import.ImportResult:
    return user_import.import_users(crm.session, HEADER + "".join(f"{line}\n" for line in lines))


def test_an_import_creates_users_with_generated_passwords(crm):
    result = import_users(crm, "alice,Alice,alice@example.com,销售部/华东,manager,member,",
                          "bob,Bob,,华北,,,given-password")
    assert result.errors == []
    assert [c["username"] for c in result.created] == ["alice", "bob"]
    generated = result.created[0]["password"]
    assert len(generated) >= org.MIN_PASSWORD and result.created[1]["password"] == ""
    assert users.authenticate(crm.session, "alice", generated) is not None
    assert users.authenticate(crm.session, "bob", "given-password") is not None
    alice = user(crm, "alice")
    assert (alice.display_name, alice.email, alice.department_id, alice.superior_id) == (
        "Alice", "alice@example.com", department(crm, "华东"), crm.user("manager"))
    assert roles.roles_of(crm.session, alice.id) == ["member"]


def test_an_import_can_name_a_superior_further_down_the_file(crm):
    result = import_users(crm, "carol,Carol,,上海,dave,,", "dave,Dave,,华东,manager,,")
    assert result.errors == []
    assert user(crm, "carol").superior_id == user(crm, "dave").id


def test_an_import_with_a_bad_line_creates_nobody_and_names_the_line(crm):
    result = import_users(crm, "erin,Erin,,华东,,,", "bad name,Bad,,华东,,,")
    assert result.created == []
    assert [(line, set(fields)) for line, fields in result.errors] == [(3, {"username"})]
    assert user(crm, "erin") is None


def test_an_import_names_unknown_departments_superiors_and_roles(crm):
    result = import_users(crm, "f1,F1,,西藏,,,", "f2,F2,,,nobody,,", "f3,F3,,,,wizard,",
                          "f4,F4,,,,,short")
    assert [(line, set(fields)) for line, fields in result.errors] == [
        (2, {"department"}), (3, {"superior"}), (4, {"roles"}), (5, {"password"})]
    assert result.errors[0][1]["department"] == "no department '西藏'"


@pytest.mark.parametrize("lines", [("manager,Again,,,,,",), ("gina,G,,,,,", "gina,G2,,,,,")],
                         ids=["existing", "twice in the file"])
def test_an_import_refuses_a_taken_username(crm, lines):
    result = import_users(crm, *lines)
    assert [set(fields) for _, fields in result.errors] == [{"username"}]


@pytest.mark.parametrize("lines", [("hank,H,,,hank,,",), ("ivan,I,,,jack,,", "jack,J,,,ivan,,")],
                         ids=["own superior", "each other's"])
def test_an_import_refuses_a_superior_cycle(crm, lines):
    result = import_users(crm, *lines)
    assert result.created == [] and {"superior"} <= set().union(*(f for _, f in result.errors))


@pytest.mark.parametrize("text", ["name,email\nx,y\n", "username,colour\nx,red\n"],
                         ids=["no username column", "unknown column"])
def test_an_import_needs_known_columns(crm, text):
    assert refused(user_import.import_users, crm.session, text) == {"file"}


def test_an_import_finds_a_department_by_its_path_when_the_name_is_not_unique(crm):
    org.create_department(crm.session, "华东", department(crm, "财务部"))
    result = import_users(crm, "kate,K,,华东,,,", "liam,L,,销售部/华东,,,")
    assert [(line, set(fields)) for line, fields in result.errors] == [(2, {"department"})]
    assert import_users(crm, "liam,L,,销售部/华东,,,").errors == []
    assert user(crm, "liam").department_id == department(crm, "华东")
