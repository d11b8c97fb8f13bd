"""Data permissions: every object × operation × scope, through the engine and the API.

The expected records come from the organisation in ``orgchart`` (plain Python); the
engine compiles the same scopes to SQL. One organisation per backend is built for the
module, and every test runs in a transaction that is rolled back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from metacrm.config import Settings
from metacrm.engine.access import dimensions, permissions, teams, users
from metacrm.engine.access.permissions import OPERATIONS, SCOPES
from metacrm.engine.actor import SYSTEM
from metacrm.engine.errors import PermissionDenied, RecordNotFound
from metacrm.engine.flows import transfer
from metacrm.engine.reading import query
from metacrm.engine.schema import metastore
from metacrm.engine.systables import sys_user_role
from metacrm.engine.writing import records

import orgchart
from conftest import ApiClient

OBJECTS = orgchart.sample_objects()  # name → features, read when the tests are collected
ACTORS = ("manager", "director")  # 华东 with 上海 below; 销售部 with three levels below
LIST = query.ListParams(page_size=50)
ONE = query.ListParams(page_size=1, count="exact")



def attempt(crm, action: Callable[[], object]) -> str:
    """'ok', 'not found' (404) or 'denied' (403); whatever happened is rolled back."""
    savepoint = crm.session.begin_nested()
    try:
        action()
    except RecordNotFound:
        return "not found"
    except PermissionDenied:
        return "denied"
    finally:
        savepoint.rollback()
    return "ok"


def each_record(crm, object_name: str, action: Callable[[int], object]) -> dict[int, str]:
    return {rid: attempt(crm, lambda rid=rid: action(rid))
            for rid in sorted(crm.org.all_ids(object_name))}


def outcomes(crm, object_name: str, allowed: set[int], otherwise: str) -> dict[int, str]:
    return {rid: "ok" if rid in allowed else otherwise
            for rid in sorted(crm.org.all_ids(object_name))}


def listed(crm, object_name: str, actor, operation: str = "read") -> set[int]:
    """The ids listed; the count statement (a page of one) must agree with them."""
    page = query.list_records(crm.session, crm.registry, object_name, LIST, actor=actor,
                              operation=operation)
    ids = {r["id"] for r in page.items}
    counted = query.list_records(crm.session, crm.registry, object_name, ONE, actor=actor,
                                 operation=operation)
    assert (counted.total, counted.total_exact) == (len(ids), True)
    return ids


# -- the matrix ---------------------------------------------------------------------------
def check_read(crm, object_name: str, scope: str, key: str) -> None:
    actor = crm.grant(key, "read", scope, object_name)
    expected = crm.expected(object_name, scope, key)
    if scope == "none" and "team" not in OBJECTS[object_name]:
        with pytest.raises(PermissionDenied):
            listed(crm, object_name, actor)
    else:  # team objects list the records one is a member of, here none
        assert listed(crm, object_name, actor) == expected
    assert each_record(crm, object_name, lambda rid: records.get(
        crm.session, crm.registry, object_name, rid, actor=actor)) == \
        outcomes(crm, object_name, expected, "not found")


def writer_check(operation: str, act: Callable) -> Callable:
    """A write operation granted within ``scope``, with read 'all' so 403 and 404 differ."""
    def check(crm, object_name: str, scope: str, key: str) -> None:
        actor = crm.grant(key, operation, scope, object_name,
                          also={(object_name, "read"): "all"})
        assert each_record(crm, object_name, lambda rid: act(crm, object_name, rid, actor)) == \
            outcomes(crm, object_name, crm.expected(object_name, scope, key), "denied")
    return check


def edit(crm, object_name, rid, actor):
    """Writes the object's first free-text field (remarks, a description)."""
    note = next(f.name for f in crm.registry.object(object_name).active_fields
                if f.type == "textarea")
    records.update_record(crm.session, crm.registry, object_name, rid,
                          {note: "checked"}, actor=actor)


def remove(crm, object_name, rid, actor):
    records.delete(crm.session, crm.registry, object_name, rid, actor=actor)


def hand_over(crm, object_name, rid, actor):
    transfer.transfer(crm.session, crm.registry, actor, crm.registry.object(object_name),
                      [rid], crm.user("finance"))


def check_create(crm, object_name: str, scope: str, key: str) -> None:
    """A new record is allowed exactly when its owner lies in the scope. (Reading every
    object: a lookup may only point at a record its creator may read.)"""
    actor = crm.grant(key, "create", scope, object_name, also={("*", "read"): "all"})
    tried = {owner: attempt(crm, lambda owner=owner: records.create(
        crm.session, crm.registry, object_name,
        {**orgchart.record_values(crm.registry, object_name, owner, crm.org, " (new)"),
         "owner": crm.user(owner)}, actor=actor)) for owner in crm.org.users}
    owners = crm.org.owners_in(scope, key)
    assert tried == {owner: "ok" if owner in owners else "denied" for owner in crm.org.users}


def check_export(crm, object_name: str, scope: str, key: str) -> None:
    actor = crm.grant(key, "export", scope, object_name)
    if scope == "none":
        with pytest.raises(PermissionDenied):
            listed(crm, object_name, actor, "export")
    else:
        assert listed(crm, object_name, actor, "export") == \
            crm.expected(object_name, scope, key)


def check_import(crm, object_name: str, scope: str, key: str) -> None:
    """Imported rows are new records: only the object-level check applies."""
    actor = crm.grant(key, "import", scope, object_name)
    obj = crm.registry.object(object_name)
    assert permissions.can(crm.session, actor, obj, "import") is (scope != "none")


CHECKS = {
    "read": check_read,
    "create": check_create,
    "edit": writer_check("edit", edit),
    "delete": writer_check("delete", remove),
    "transfer": writer_check("transfer", hand_over),
    "import": check_import,
    "export": check_export,
}
MATRIX = [pytest.param(o, op, s, k, id=f"{o}-{op}-{s}-{k}")
          for o in OBJECTS for op in OPERATIONS for s in SCOPES for k in ACTORS]


def test_the_matrix_covers_every_installed_object_and_operation(world):
    assert {o.name for o in world.registry.active_objects
            if o.master_field is None} == set(OBJECTS)
    assert set(CHECKS) == set(OPERATIONS)


@pytest.mark.parametrize(("object_name", "operation", "scope", "key"), MATRIX)
def test_a_grant_reaches_exactly_the_records_of_its_scope(crm, object_name, operation, scope,
                                                          key):
    CHECKS[operation](crm, object_name, scope, key)


@pytest.mark.parametrize("operation", ["edit", "delete", "transfer"])
@pytest.mark.parametrize("object_name", OBJECTS)
def test_a_write_grant_without_read_finds_nothing(crm, object_name, operation):
    actor = crm.grant("manager", operation, "all", object_name)
    act = {"edit": edit, "delete": remove, "transfer": hand_over}[operation]
    assert set(each_record(crm, object_name,
                           lambda rid: act(crm, object_name, rid, actor)).values()) == \
        {"not found"}


# -- combining roles ----------------------------------------------------------------------
@pytest.mark.parametrize("object_name", OBJECTS)
def test_the_scopes_of_several_roles_add_up(crm, object_name):
    actor = crm.give("manager", crm.role({("*", "read"): "own_and_subordinates"}),
                     crm.role({("*", "read"): "department"}))
    assert listed(crm, object_name, actor) == \
        crm.expected(object_name, "own_and_subordinates", "manager") | \
        crm.expected(object_name, "department", "manager")


def test_a_grant_for_an_object_overrides_the_star_row(crm):
    actor = crm.give("manager", crm.role({("*", "read"): "all", ("customer", "read"): "own"}))
    assert listed(crm, "customer", actor) == crm.expected("customer", "own", "manager")
    assert listed(crm, "contact", actor) == crm.org.all_ids("contact")


@pytest.mark.parametrize("without", ["a role without grants", "no role at all"])
@pytest.mark.parametrize("object_name", OBJECTS)
def test_a_user_without_a_read_grant_sees_nothing(crm, object_name, without):
    actor = crm.give("rep_east", crm.role({}))
    if without == "no role at all":
        crm.session.execute(delete(sys_user_role).where(
            sys_user_role.c.user_id == crm.user("rep_east")))
        actor = crm.actor("rep_east")
    if "team" in OBJECTS[object_name]:
        assert listed(crm, object_name, actor) == set()
    else:
        with pytest.raises(PermissionDenied):
            listed(crm, object_name, actor)
    assert set(each_record(crm, object_name, lambda rid: records.get(
        crm.session, crm.registry, object_name, rid, actor=actor)).values()) == {"not found"}


@pytest.mark.parametrize("object_name", OBJECTS)
def test_a_super_administrator_sees_and_edits_everything(crm, object_name):
    admin = crm.actor("admin")
    assert listed(crm, object_name, admin) == crm.org.all_ids(object_name)
    assert set(each_record(crm, object_name,
                           lambda rid: edit(crm, object_name, rid, admin)).values()) == {"ok"}


def test_a_team_member_sees_a_record_beyond_the_role_scope(crm):
    actor = crm.grant("manager", "read", "own", "customer")
    north = crm.org.records["customer"]["rep_north"]
    teams.put_member(crm.session, crm.registry.object("customer"), north, crm.user("manager"),
                     "read", None, SYSTEM)
    assert listed(crm, "customer", actor) == crm.expected("customer", "own", "manager") | {north}


@pytest.mark.parametrize("scope", SCOPES)
def test_a_row_in_hand_is_judged_as_the_sql_condition_judges_it(crm, scope):
    """A write checks the values it stores without a statement: the same verdict."""
    obj, table = crm.registry.object("customer"), crm.registry.table("customer")
    north = crm.org.records["customer"]["rep_north"]
    for key in ACTORS:
        actor = crm.grant(key, "edit", scope, "customer")
        teams.put_member(crm.session, obj, north, crm.user(key), "write", None, SYSTEM)
        rows = [dict(r._mapping) for r in crm.session.execute(select(table))]
        in_sql = set(crm.session.execute(select(table.c.id).where(
            permissions.condition(crm.session, actor, obj, table, "edit"))).scalars())
        in_hand = {row["id"] for row in rows
                   if permissions.admits(crm.session, actor, obj, table, "edit", [row])}
        assert in_hand == in_sql and north in in_hand


# -- explain ------------------------------------------------------------------------------
def explain(crm, actor, object_name: str, owner: str | None, operation: str = "read"):
    rid = crm.org.records[object_name][owner]
    return permissions.explain(crm.session, crm.registry, actor,
                               crm.registry.object(object_name), rid, operation)


def east_sales(crm, scope: str = "department"):
    role = crm.role({("customer", "read"): scope}, label={"en": "East sales", "zh": "华东销售"})
    return crm.give("manager", role)


def test_explain_names_the_role_and_scope_that_allow(crm):
    verdict = explain(crm, east_sales(crm), "customer", "rep_east")
    assert verdict.allowed
    assert "role East sales grants read within “Own department”, and the record is inside it" \
        in verdict.reasons


def test_explain_says_the_record_is_outside_the_scope_of_the_role(crm):
    verdict = explain(crm, east_sales(crm), "customer", "rep_north")
    assert not verdict.allowed and verdict.found
    assert "role East sales grants read within “Own department”, but the record is outside it" \
        in verdict.reasons


def test_explain_says_when_no_role_grants_the_operation(crm):
    verdict = explain(crm, east_sales(crm), "customer", "manager", "delete")
    assert not verdict.allowed
    assert "no role of manager grants delete on customer" in verdict.reasons


def test_explain_names_team_membership(crm):
    actor = east_sales(crm)
    teams.put_member(crm.session, crm.registry.object("customer"),
                     crm.org.records["customer"]["rep_north"], crm.user("manager"), "read",
                     None, SYSTEM)
    verdict = explain(crm, actor, "customer", "rep_north")
    assert verdict.allowed
    assert "the user is a current team member of the record with enough access" \
        in verdict.reasons


def test_explain_of_a_missing_record_says_so(crm):
    verdict = permissions.explain(crm.session, crm.registry, east_sales(crm),
                                  crm.registry.object("customer"), 999_999, "read")
    assert not verdict.allowed and not verdict.found


def test_explain_for_a_super_administrator(crm):
    verdict = explain(crm, crm.actor("admin"), "contact", "finance", "delete")
    assert verdict.allowed and verdict.reasons == ["admin is a super administrator"]


# -- no extra queries ---------------------------------------------------------------------
@pytest.mark.parametrize("object_name", OBJECTS)
def test_a_scoped_list_runs_as_many_statements_as_an_administrators(crm, world, object_name):
    scoped = crm.give("manager", crm.role({("*", "read"): "own_and_subordinates"}),
                      crm.role({("*", "read"): "department_tree"}))
    admin = crm.actor("admin")
    paged = query.ListParams(page_size=2)  # a full page: the count is a statement of its own
    counts = {}
    for name, actor in (("scoped", scoped), ("admin", admin)):
        query.list_records(crm.session, crm.registry, object_name, paged, actor=actor)
        with orgchart.statements(world.engine) as seen:
            page = query.list_records(crm.session, crm.registry, object_name, paged,
                                      actor=actor)
            records.get(crm.session, crm.registry, object_name, page.items[0]["id"],
                        actor=actor)
        counts[name] = len(seen)
    assert counts["scoped"] == counts["admin"] == 3


# -- dimensions ---------------------------------------------------------------------------
REGION_OF = {"manager": "east", "rep_east": "shanghai", "peer_east": "north",
             "rep_north": "east", "director": "east"}  # customers' regions; others have none


@dataclasses.dataclass
class Regions:
    world: orgchart.World
    nodes: dict[str, int]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def regions(request, tmp_path_factory):
    """Another organisation whose customers carry a region (东区 ⊃ 上海区, 北区)."""
    with orgchart.world(request.param, tmp_path_factory.mktemp("regions")) as w:
        with Session(w.engine) as s:
            root = dimensions.create_dimension(s, "region", {"en": "Region", "zh": "区域"})
            east = dimensions.add_node(s, root, "东区")
            nodes = {"root": root, "east": east, "shanghai": dimensions.add_node(s, east, "上海区"),
                     "north": dimensions.add_node(s, root, "北区")}
            s.commit()
        dimensions.switch(w.engine, w.registry.object("customer"), "region", True, "test")
        with Session(w.engine) as s:
            registry = metastore.load_registry(s)
            for key, region in REGION_OF.items():
                records.update_record(s, registry, "customer", w.org.records["customer"][key],
                                      {"dim_region": nodes[region]}, actor=SYSTEM)
            s.commit()
        yield Regions(dataclasses.replace(w, registry=registry), nodes)


@pytest.fixture
def rcrm(regions):
    with orgchart.rolled_back(regions.world) as c:
        yield c


def holding(rcrm, regions, *names: str) -> None:
    dimensions.set_user_values(rcrm.session, rcrm.user("manager"), "region",
                               [regions.nodes[n] for n in names])


def test_a_dimension_narrows_the_scope_to_the_nodes_held_and_below(rcrm, regions):
    actor = rcrm.grant("manager", "read", "department_tree", "customer")
    holding(rcrm, regions, "east")
    assert listed(rcrm, "customer", actor) == rcrm.org.ids("customer", {"manager", "rep_east"})


def test_a_dimension_narrows_even_an_all_grant(rcrm, regions):
    actor = rcrm.grant("manager", "read", "all", "customer")
    holding(rcrm, regions, "east")
    assert listed(rcrm, "customer", actor) == rcrm.org.ids(
        "customer", {k for k, r in REGION_OF.items() if r in ("east", "shanghai")})


def test_holding_the_root_of_a_dimension_sees_the_whole_scope(rcrm, regions):
    actor = rcrm.grant("manager", "read", "department_tree", "customer")
    holding(rcrm, regions, "root")
    assert listed(rcrm, "customer", actor) == rcrm.expected("customer", "department_tree",
                                                            "manager")


def test_a_dimension_limits_writes_as_well(rcrm, regions):
    actor = rcrm.grant("manager", "edit", "department_tree", "customer",
                       also={("customer", "read"): "all"})
    holding(rcrm, regions, "east")
    readable = rcrm.org.ids("customer", {"manager", "rep_east", "rep_north", "director"})
    editable = rcrm.org.ids("customer", {"manager", "rep_east"})
    assert each_record(rcrm, "customer", lambda rid: edit(rcrm, "customer", rid, actor)) == {
        rid: "ok" if rid in editable else "denied" if rid in readable else "not found"
        for rid in rcrm.org.all_ids("customer")}


def test_an_object_without_the_dimension_is_not_narrowed(rcrm, regions):
    actor = rcrm.grant("manager", "read", "department_tree", "contact")
    holding(rcrm, regions, "north")
    assert listed(rcrm, "contact", actor) == rcrm.expected("contact", "department_tree",
                                                           "manager")


def test_explain_names_the_dimension_that_decides(rcrm, regions):
    actor = rcrm.grant("manager", "read", "department_tree", "customer")
    holding(rcrm, regions, "east")
    outside = explain(rcrm, actor, "customer", "peer_east")
    inside = explain(rcrm, actor, "customer", "rep_east")
    assert not outside.allowed and inside.allowed
    assert "dimension region: the record's value is not one of the user's values" \
        in outside.reasons
    assert "dimension region: the record's value is one of the user's values" in inside.reasons


def test_a_form_offers_the_nodes_held_and_those_below(rcrm, regions):
    actor = rcrm.grant("manager", "create", "own", "customer")
    holding(rcrm, regions, "east")
    offered = [n.id for n in dimensions.offered_nodes(rcrm.session, actor, "region")]
    assert offered == [regions.nodes["east"], regions.nodes["shanghai"]]


def test_a_form_offers_an_administrator_the_whole_tree(rcrm, regions):
    actor = dataclasses.replace(rcrm.grant("manager", "create", "own", "customer"),
                                is_admin=True)
    holding(rcrm, regions, "east")
    offered = {n.id for n in dimensions.offered_nodes(rcrm.session, actor, "region")}
    assert offered == set(regions.nodes.values())


def test_a_new_record_takes_the_creators_first_node(rcrm, regions):
    actor = rcrm.grant("manager", "create", "own", "customer")
    holding(rcrm, regions, "east", "north")
    row = records.create(rcrm.session, rcrm.registry, "customer", {"name": "新客户"},
                         actor=actor)
    assert row["dim_region"] == regions.nodes["east"]


# -- the same over HTTP -------------------------------------------------------------------
@pytest.fixture(scope="module")
def http(world, tmp_path_factory) -> ApiClient:
    """The API as the manager, on the module's database; grants are committed per test."""
    from metacrm.ui.app import create_app

    settings = Settings(database_url=world.url, secret_key="test-secret",
                        metadata_poll_seconds=0, testing=True,
                        instance_dir=tmp_path_factory.mktemp("instance"))
    app = create_app(settings, engine=world.engine)
    with Session(world.engine) as s:
        token = users.issue_token(s, users.load_actor(s, world.org.users["manager"]))
        s.commit()
    return ApiClient(app.test_client(), token)


def committed_grants(world, grants) -> None:
    with Session(world.engine) as s:
        crm = orgchart.Crm(s, world.registry, world.org)
        crm.give("manager", crm.role(grants))
        s.commit()


OBJECT_SCOPES = [pytest.param(o, s, id=f"{o}-{s}") for o in OBJECTS for s in SCOPES]


@pytest.mark.parametrize(("object_name", "scope"), OBJECT_SCOPES)
def test_the_api_lists_and_opens_exactly_the_readable_records(world, http, object_name, scope):
    committed_grants(world, {(object_name, "read"): scope})
    expected = world.org.expected(object_name, scope, "manager")
    url = f"/api/v1/objects/{object_name}/records"
    response = http.get(url, query_string={"page_size": 50, "count": "exact"})
    if scope == "none" and "team" not in OBJECTS[object_name]:
        assert response.status_code == 403
    else:
        body = response.get_json()
        assert response.status_code == 200
        assert {i["id"] for i in body["items"]} == expected and body["total"] == len(expected)
    assert {rid: http.get(f"{url}/{rid}").status_code
            for rid in world.org.all_ids(object_name)} == \
        {rid: 200 if rid in expected else 404 for rid in world.org.all_ids(object_name)}


@pytest.mark.parametrize(("object_name", "scope"), OBJECT_SCOPES)
def test_the_api_edits_exactly_the_editable_records(world, http, object_name, scope):
    committed_grants(world, {(object_name, "read"): "all", (object_name, "edit"): scope})
    expected = world.org.expected(object_name, scope, "manager")
    url = f"/api/v1/objects/{object_name}/records"
    statuses = {}
    note = next(f.name for f in world.registry.object(object_name).active_fields
                if f.type == "textarea")
    for rid in world.org.all_ids(object_name):
        version = http.get(f"{url}/{rid}").get_json()["version"]
        statuses[rid] = http.patch(f"{url}/{rid}", json={note: f"by api, {scope}",
                                                         "version": version}).status_code
    assert statuses == {rid: 200 if rid in expected else 403
                        for rid in world.org.all_ids(object_name)}


@pytest.mark.parametrize("object_name", OBJECTS)
def test_the_api_answers_404_to_an_edit_outside_the_read_scope(world, http, object_name):
    committed_grants(world, {(object_name, "read"): "own", (object_name, "edit"): "all"})
    url = f"/api/v1/objects/{object_name}/records"
    other = world.org.records[object_name]["rep_north"]
    response = http.patch(f"{url}/{other}", json={"remark": "no", "version": 1})
    assert response.status_code == 404
