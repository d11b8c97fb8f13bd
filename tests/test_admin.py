"""The admin screens and the admin JSON API: users, departments, roles, dimensions,
explain; on SQLite and PostgreSQL, CSRF on for the pages."""

from __future__ import annotations

import io

import pytest
from sqlalchemy.orm import Session

from metacrm.engine.access import dimensions, org, roles, user_import, users
from metacrm.engine.actor import SYSTEM
from metacrm.engine.schema import metastore
from metacrm.engine.writing import records as record_service

from conftest import ApiClient, signed_in

ADMIN = "/api/v1/admin"


def put(api: ApiClient, url: str, **kw):
    return api.request("PUT", url, **kw)


@pytest.fixture
def make_user(engine):
    """A factory: a committed user with the given roles (the employee role by default)."""

    def make(username: str, *, roles_: list[str] | None = None, **values) -> int:
        with Session(engine) as s, s.begin():
            return users.create_user(s, username, "user-password", roles=roles_, **values)

    return make


def token_client(app, username: str, password: str) -> ApiClient:
    client = app.test_client()
    response = client.post("/api/v1/auth/token",
                           json={"username": username, "password": password})
    return ApiClient(client, response.get_json()["token"])


def error_of(response) -> dict:
    return response.get_json()["error"]


def department_id(api: ApiClient, name: str) -> int:
    items = api.get(f"{ADMIN}/departments").get_json()["items"]
    return next(d["id"] for d in items if d["name"] == name)


def role_id(api: ApiClient, name: str) -> int:
    items = api.get(f"{ADMIN}/roles").get_json()["items"]
    return next(r["id"] for r in items if r["name"] == name)


# -- access -----------------------------------------------------------------------------
def test_admin_pages_ask_anonymous_visitors_to_sign_in(app):
    response = app.test_client().get("/admin/users")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("url", ["/admin/users", "/admin/users/new", "/admin/departments",
                                 "/admin/roles", "/admin/dimensions", "/admin/explain",
                                 "/admin/users/import"])
def test_admin_pages_are_forbidden_to_other_users(app, admin, make_user, url):
    make_user("clerk")
    browser = signed_in(app, "clerk", "user-password")
    assert browser.get(url).status_code == 403


def test_admin_forms_are_forbidden_to_other_users(app, admin, make_user):
    make_user("clerk")
    browser = signed_in(app, "clerk", "user-password")
    response = browser.post("/admin/departments", {"name": "Sneaky", "parent_id": "1"})
    assert response.status_code == 403


def test_admin_api_is_forbidden_to_other_users(app, admin, make_user):
    make_user("clerk")
    clerk = token_client(app, "clerk", "user-password")
    for method, url in (("GET", "/users"), ("POST", "/departments"), ("GET", "/roles"),
                        ("GET", "/explain?user_id=1&object=customer&record_id=1")):
        response = clerk.request(method, ADMIN + url, json={})
        assert response.status_code == 403 and error_of(response)["code"] == "forbidden"


def test_admin_api_needs_a_token(anonymous):
    assert anonymous.get(f"{ADMIN}/users").status_code == 401


def test_the_admin_menu_is_shown_to_super_administrators_only(app, web, make_user):
    assert 'id="admin-menu"' in web.text("/o/customer")
    make_user("clerk")
    clerk = signed_in(app, "clerk", "user-password")
    assert 'id="admin-menu"' not in clerk.text("/o/customer")


# -- users ------------------------------------------------------------------------------
def test_creating_a_user_through_the_page(web, api):
    sales = api.post(f"{ADMIN}/departments", json={"name": "销售部", "parent_id": department_id(
        api, org.ROOT_NAME)}).get_json()["id"]
    response = web.post("/admin/users/new", {
        "username": "lisi", "display_name": "李四", "email": "lisi@example.com",
        "password": "first-password", "department_id": str(sales), "superior_id": "",
        "language": "zh", "roles": ["member"]})
    assert response.status_code == 302
    user = api.get(ADMIN + response.headers["Location"].removeprefix("/admin")).get_json()
    assert (user["username"], user["display_name"], user["department"], user["roles"]) == \
        ("lisi", "李四", "销售部", ["member"])


def test_a_refused_user_form_shows_field_errors_and_keeps_what_was_typed(web, admin):
    response = web.post("/admin/users/new", {"username": "admin", "display_name": "Typed Name",
                                             "password": "short", "roles": ["member"]})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'data-field="username"' in html and 'data-field="password"' in html
    assert 'value="Typed Name"' in html


def test_creating_a_user_through_the_api(api):
    response = api.post(f"{ADMIN}/users", json={
        "username": "wangwu", "password": "first-password", "display_name": "王五",
        "roles": ["member"]})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["username"] == "wangwu" and body["department"] == org.ROOT_NAME
    assert api.get(response.headers["Location"]).get_json()["display_name"] == "王五"


def test_the_api_refuses_a_user_with_a_missing_department(api):
    response = api.post(f"{ADMIN}/users", json={"username": "x1", "password": "first-password",
                                                "department_id": 9999})
    assert response.status_code == 422
    assert error_of(response)["fields"]["department_id"] == "no department with id 9999"


def test_editing_a_user_moves_department_and_sets_superior_and_roles(web, api, make_user):
    boss, worker = make_user("boss"), make_user("worker")
    sales = api.post(f"{ADMIN}/departments", json={"name": "Sales", "parent_id": department_id(
        api, org.ROOT_NAME)}).get_json()["id"]
    api.post(f"{ADMIN}/roles", json={"name": "sales_rep", "label": {"en": "Rep", "zh": "销售"}})
    response = web.post(f"/admin/users/{worker}", {
        "display_name": "Worker Bee", "email": "", "language": "en",
        "department_id": str(sales), "superior_id": str(boss),
        "roles": ["member", "sales_rep"]})
    assert response.status_code == 302
    user = api.get(f"{ADMIN}/users/{worker}").get_json()
    assert (user["display_name"], user["department_id"], user["superior_id"], user["language"],
            user["roles"]) == ("Worker Bee", sales, boss, "en", ["member", "sales_rep"])


def test_a_superior_cycle_is_refused_on_the_page(web, make_user):
    boss = make_user("boss")
    worker = make_user("worker", superior_id=boss)
    response = web.post(f"/admin/users/{boss}", {
        "display_name": "boss", "language": "zh", "department_id": "",
        "superior_id": str(worker), "roles": ["member"]})
    assert response.status_code == 422
    assert 'data-field="superior_id"' in response.get_data(as_text=True)


def test_patching_a_user_through_the_api(api, make_user):
    user = make_user("zhaoliu", superior_id=None)
    response = api.patch(f"{ADMIN}/users/{user}", json={
        "display_name": "赵六", "roles": ["member"], "active": False, "superior_id": None})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["active"] is False
    assert api.get(f"{ADMIN}/users?active=false").get_json()["items"][0]["username"] == "zhaoliu"


def test_disabling_and_resetting_a_password_through_the_page(app, web, make_user):
    user = make_user("temp")
    assert web.post(f"/admin/users/{user}/password", {"password": "brand-new-pass"}) \
        .status_code == 302
    signed_in(app, "temp", "brand-new-pass")
    assert web.post(f"/admin/users/{user}/active", {"active": "0"}).status_code == 302
    assert 'name="active" value="1"' in web.text(f"/admin/users/{user}")  # offers activate


def test_the_users_list_searches_and_filters(web, make_user):
    make_user("alpha", display_name="Alpha One")
    make_user("beta", display_name="Beta Two")
    html = web.text("/admin/users?q=alp")
    assert 'data-user="alpha"' in html and 'data-user="beta"' not in html
    assert 'data-user="admin"' in web.text("/admin/users?active=1")


def test_user_names_are_escaped_in_the_list(web, make_user):
    make_user("xss", display_name='<script>alert("x")</script>')
    html = web.text("/admin/users")
    assert '<script>alert("x")</script>' not in html and "&lt;script&gt;" in html


# -- CSV import -------------------------------------------------------------------------
GOOD_CSV = ("username,display_name,email,department,superior,roles,password\n"
            "imp_boss,Boss,,全公司,,member,\n"
            "imp_rep,Rep,rep@example.com,,imp_boss,member,rep-password-1\n")
BAD_CSV = ("username,display_name,department,roles\n"
           "fine_one,Fine,,member\n"
           "admin,Taken,,member\n"
           "ghost,Ghost,Nowhere,no_such_role\n")


def test_csv_import_through_the_page_shows_the_first_passwords(web, api):
    response = web.post("/admin/users/import", {
        "file": (io.BytesIO(GOOD_CSV.encode("utf-8-sig")), "users.csv")},
        content_type="multipart/form-data")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="created-users"' in html
    rep = api.get(f"{ADMIN}/users?q=imp_rep").get_json()["items"][0]
    assert rep["superior"] == "Boss"


def test_csv_import_is_all_or_nothing_with_errors_by_line(web, api):
    response = web.post("/admin/users/import", {
        "file": (io.BytesIO(BAD_CSV.encode()), "users.csv")},
        content_type="multipart/form-data")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'data-line="3"' in html and 'data-line="4"' in html and 'data-line="2"' not in html
    assert api.get(f"{ADMIN}/users?q=fine_one").get_json()["total"] == 0


def test_csv_import_through_the_api(api):
    response = api.post(f"{ADMIN}/users/import", data=GOOD_CSV.encode(),
                        content_type="text/csv")
    assert response.status_code == 201
    created = response.get_json()["created"]
    assert [c["username"] for c in created] == ["imp_boss", "imp_rep"]
    assert len(created[0]["password"]) >= 8 and created[1]["password"] == ""


def test_csv_import_through_the_api_lists_every_failing_line(api):
    response = api.post(f"{ADMIN}/users/import", data=BAD_CSV.encode(), content_type="text/csv")
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "validation_failed" and error["fields"] == {}
    assert error["lines"] == [
        {"line": 3, "fields": {"username": "'admin' is already taken"}},
        {"line": 4, "fields": {"department": "no department 'Nowhere'",
                               "roles": "no role 'no_such_role'"}}]
    assert api.get(f"{ADMIN}/users?q=fine_one").get_json()["total"] == 0


def test_csv_import_refuses_superiors_that_form_a_loop(api):
    looped = ("username,superior\n"
              "loop_a,loop_b\n"
              "loop_b,loop_a\n")
    response = api.post(f"{ADMIN}/users/import", data=looped.encode(), content_type="text/csv")
    assert response.status_code == 422
    assert [line["line"] for line in error_of(response)["lines"]] == [2, 3]
    assert api.get(f"{ADMIN}/users?q=loop_").get_json()["total"] == 0


def test_the_import_template_names_every_column(web):
    response = web.get("/admin/users/import/template.csv")
    assert response.mimetype == "text/csv"
    header = response.get_data(as_text=True).lstrip("\ufeff").splitlines()[0]
    assert header.split(",") == list(user_import.IMPORT_COLUMNS)


# -- departments ------------------------------------------------------------------------
def test_departments_are_created_and_moved(api):
    root = department_id(api, org.ROOT_NAME)
    east = api.post(f"{ADMIN}/departments", json={"name": "华东", "parent_id": root})
    west = api.post(f"{ADMIN}/departments", json={"name": "华西", "parent_id": root})
    assert east.status_code == 201
    east_id, west_id = east.get_json()["id"], west.get_json()["id"]
    moved = api.patch(f"{ADMIN}/departments/{west_id}", json={"parent_id": east_id})
    assert moved.status_code == 200 and moved.get_json()["depth"] == 2


def test_moving_a_department_under_its_own_child_is_refused(api):
    root = department_id(api, org.ROOT_NAME)
    parent = api.post(f"{ADMIN}/departments", json={"name": "A", "parent_id": root}) \
        .get_json()["id"]
    child = api.post(f"{ADMIN}/departments", json={"name": "B", "parent_id": parent}) \
        .get_json()["id"]
    response = api.patch(f"{ADMIN}/departments/{parent}", json={"parent_id": child})
    assert response.status_code == 422 and "parent_id" in error_of(response)["fields"]


def test_deleting_a_department_with_users_is_refused_with_the_reason(web, api, make_user):
    root = department_id(api, org.ROOT_NAME)
    sales = api.post(f"{ADMIN}/departments", json={"name": "Sales", "parent_id": root}) \
        .get_json()["id"]
    make_user("seller", department_id=sales)
    response = web.post(f"/admin/departments/{sales}/delete")
    assert response.status_code == 422
    assert 'data-field="department"' in response.get_data(as_text=True)
    assert department_id(api, "Sales") == sales
    api_response = api.delete(f"{ADMIN}/departments/{sales}")
    assert api_response.status_code == 422
    assert error_of(api_response)["fields"]["department"] == \
        "move its 0 sub-department(s) and 1 user(s) first"


def test_an_empty_department_is_deleted_through_the_page(web, api):
    root = department_id(api, org.ROOT_NAME)
    spare = api.post(f"{ADMIN}/departments", json={"name": "Spare", "parent_id": root}) \
        .get_json()["id"]
    assert web.post(f"/admin/departments/{spare}/delete").status_code == 302
    names = [d["name"] for d in api.get(f"{ADMIN}/departments").get_json()["items"]]
    assert "Spare" not in names


def test_the_department_page_creates_a_sub_department(web, api):
    root = department_id(api, org.ROOT_NAME)
    response = web.post("/admin/departments", {"name": "研发部", "parent_id": str(root),
                                               "head_id": ""})
    assert response.status_code == 302
    assert "研发部" in web.text("/admin/departments")


# -- roles ------------------------------------------------------------------------------
def test_the_role_grid_is_saved_from_the_page_and_read_back(web, api):
    role = api.post(f"{ADMIN}/roles", json={"name": "sales_manager", "label": {
        "en": "Sales manager", "zh": "销售经理"}}).get_json()["id"]
    response = web.post(f"/admin/roles/{role}/grants", {
        "g.*.read": "department_tree", "g.*.edit": "own", "g.customer.read": "all",
        "g.customer.edit": ""})
    assert response.status_code == 302
    grants = {(g["object"], g["operation"]): g["scope"]
              for g in api.get(f"{ADMIN}/roles/{role}").get_json()["grants"]}
    assert grants[("*", "read")] == "department_tree" and grants[("customer", "read")] == "all"
    assert ("customer", "edit") not in grants
    html = web.text(f"/admin/roles/{role}")
    assert '<option value="all" selected>' in html


def test_grants_are_replaced_through_the_api(api):
    role = api.post(f"{ADMIN}/roles", json={"name": "viewer", "label": {
        "en": "Viewer", "zh": "查看者"}}).get_json()["id"]
    response = put(api, f"{ADMIN}/roles/{role}/grants", json={"grants": [
        {"object": "*", "operation": "read", "scope": "all"},
        {"object": "opportunity", "operation": "read", "scope": "own"}]})
    assert response.status_code == 200
    assert response.get_json()["grants"] == [
        {"object": "*", "operation": "read", "scope": "all"},
        {"object": "opportunity", "operation": "read", "scope": "own"}]
    bad = put(api, f"{ADMIN}/roles/{role}/grants", json={"grants": [
        {"object": "*", "operation": "read", "scope": "galaxy"}]})
    assert bad.status_code == 422 and "*.read" in error_of(bad)["fields"]


def test_the_super_administrator_role_shows_all_permissions_and_no_grid(web, api):
    html = web.text(f"/admin/roles/{role_id(api, 'super_admin')}")
    assert 'id="all-permissions"' in html and 'id="grants-form"' not in html


def test_field_rules_are_saved_from_the_page(web, api, registry):
    role = api.post(f"{ADMIN}/roles", json={"name": "intern", "label": {
        "en": "Intern", "zh": "实习生"}}).get_json()["id"]
    customer = registry.object("customer")
    other = next(f.name for f in customer.active_fields if f.name != customer.title_field)
    response = web.post(f"/admin/roles/{role}/fields/customer", {f"f.{other}": "hidden"})
    assert response.status_code == 302
    rules = api.get(f"{ADMIN}/roles/{role}/fields/customer").get_json()["fields"]
    assert rules[other] == "hidden" and rules[customer.title_field] == "editable"


def test_field_rules_through_the_api_refuse_hiding_the_title(api, registry):
    role = api.post(f"{ADMIN}/roles", json={"name": "intern", "label": {
        "en": "Intern", "zh": "实习生"}}).get_json()["id"]
    title = registry.object("customer").title_field
    response = put(api, f"{ADMIN}/roles/{role}/fields/customer",
                   json={"fields": {title: "hidden"}})
    assert response.status_code == 422
    assert error_of(response)["fields"][title] == "the title field cannot be hidden"


def test_the_last_super_administrator_keeps_the_role(web, api, admin):
    response = api.patch(f"{ADMIN}/users/{admin.user_id}", json={"roles": ["member"]})
    assert response.status_code == 422
    assert "last active super administrator" in error_of(response)["fields"]["roles"]
    page = web.post(f"/admin/roles/{role_id(api, 'super_admin')}/members/{admin.user_id}/remove")
    assert page.status_code == 422 and 'data-field="roles"' in page.get_data(as_text=True)
    assert api.get(f"{ADMIN}/users/{admin.user_id}").get_json()["roles"] == ["super_admin"]


def test_adding_a_member_keeps_the_users_other_roles(web, api, make_user):
    user = make_user("multi")
    role = api.post(f"{ADMIN}/roles", json={"name": "extra", "label": {
        "en": "Extra", "zh": "额外"}}).get_json()["id"]
    assert web.post(f"/admin/roles/{role}/members", {"user_id": str(user)}).status_code == 302
    assert api.get(f"{ADMIN}/users/{user}").get_json()["roles"] == ["member", "extra"]
    web.post(f"/admin/roles/{role}/members/{user}/remove")
    assert api.get(f"{ADMIN}/users/{user}").get_json()["roles"] == ["member"]


def test_a_role_is_created_through_the_page_and_deleted(web, api):
    response = web.post("/admin/roles", {"name": "temp_role", "label_en": "Temp",
                                         "label_zh": "临时", "description": ""})
    assert response.status_code == 302
    role = role_id(api, "temp_role")
    assert web.post(f"/admin/roles/{role}/delete").status_code == 302
    assert api.get(f"{ADMIN}/roles/{role}").status_code == 404


def test_a_role_key_must_be_lower_case(web):
    response = web.post("/admin/roles", {"name": "Bad Key", "label_en": "x", "label_zh": "x"})
    assert response.status_code == 422 and 'data-field="name"' in response.get_data(as_text=True)


# -- dimensions -------------------------------------------------------------------------
def test_switching_a_dimension_on_adds_its_field_to_the_object(app, api, engine):
    created = api.post(f"{ADMIN}/dimensions", json={"name": "region",
                                                    "label": {"en": "Region", "zh": "区域"}})
    assert created.status_code == 201
    root = created.get_json()["nodes"][0]["id"]
    node = api.post(f"{ADMIN}/dimensions/region/nodes", json={"parent_id": root, "name": "华东"})
    assert node.status_code == 201 and node.get_json()["depth"] == 1
    response = put(api, f"{ADMIN}/dimensions/region/objects/customer", json={"on": True})
    assert response.status_code == 200, response.get_json()
    with Session(engine) as s:
        field = metastore.load_registry(s).object("customer").all_fields["dim_region"]
    assert field.type == "dimension" and not field.archived
    served = app.extensions["metacrm"].registries.get()
    assert "dim_region" in served.object("customer").all_fields
    listed = api.get(f"{ADMIN}/dimensions").get_json()["items"][0]
    assert listed["objects"] == ["customer"]


def test_switching_a_dimension_from_the_page(web, api):
    web.post("/admin/dimensions", {"name": "line", "label_en": "Line", "label_zh": "产品线"})
    response = web.post("/admin/dimensions/line/objects/opportunity", {"on": "1"})
    assert response.status_code == 302
    html = web.text("/admin/dimensions/line")
    assert "dim_line" not in html  # the object is labelled, the field name stays inside
    assert api.get(f"{ADMIN}/dimensions").get_json()["items"][0]["objects"] == ["opportunity"]
    web.post("/admin/dimensions/line/objects/opportunity", {"on": "0"})
    assert api.get(f"{ADMIN}/dimensions").get_json()["items"][0]["objects"] == []


def test_dimension_nodes_are_added_renamed_and_deleted_on_the_page(web, session):
    web.post("/admin/dimensions", {"name": "industry", "label_en": "Industry",
                                   "label_zh": "行业"})
    root = dimensions.nodes(session, "industry")[0].id
    assert web.post("/admin/dimensions/industry/nodes",
                    {"parent_id": str(root), "name": "制造"}).status_code == 302
    session.rollback()
    node = dimensions.nodes(session, "industry")[1]
    web.post(f"/admin/dimensions/industry/nodes/{node.id}", {"name": "制造业"})
    assert "制造业" in web.text("/admin/dimensions/industry")
    refused = web.post(f"/admin/dimensions/industry/nodes/{root}/delete")
    assert refused.status_code == 422
    assert web.post(f"/admin/dimensions/industry/nodes/{node.id}/delete").status_code == 302


def test_a_users_dimension_values_are_set_through_the_api(api, make_user):
    root = api.post(f"{ADMIN}/dimensions", json={
        "name": "region", "label": {"en": "Region", "zh": "区域"}}).get_json()["nodes"][0]["id"]
    east = api.post(f"{ADMIN}/dimensions/region/nodes",
                    json={"parent_id": root, "name": "East"}).get_json()["id"]
    user = make_user("regional")
    response = api.patch(f"{ADMIN}/users/{user}", json={"dimensions": {"region": [east]}})
    assert response.status_code == 200 and response.get_json()["dimensions"] == {
        "region": [east]}


# -- explain ----------------------------------------------------------------------------
def test_explain_answers_with_the_deciding_reasons(api, make_user, session, registry):
    owner = make_user("owner_u")
    other = make_user("other_u")
    row = record_service.create(session, registry, "customer", {"name": "Explained Co",
                                                                "owner": owner}, actor=SYSTEM)
    session.commit()
    allowed = api.get(f"{ADMIN}/explain?user_id={owner}&object=customer"
                      f"&record_id={row['id']}&operation=read").get_json()
    denied = api.get(f"{ADMIN}/explain?user_id={other}&object=customer"
                     f"&record_id={row['id']}&operation=read").get_json()
    assert allowed["allowed"] is True and denied["allowed"] is False
    assert len(allowed["reasons"]) >= 1 and all(isinstance(r, str) for r in denied["reasons"])
    assert "Employee" in denied["reasons"][0]  # the caller's language: the API admin reads en


def test_explain_refuses_an_unknown_operation(api, admin):
    response = api.get(f"{ADMIN}/explain?user_id={admin.user_id}&object=customer"
                       "&record_id=1&operation=fly")
    assert response.status_code == 422 and "operation" in error_of(response)["fields"]


def test_the_explain_page_shows_the_verdict(web, admin, session, registry):
    row = record_service.create(session, registry, "customer", {"name": "Page Co"},
                                actor=admin)
    session.commit()
    html = web.text(f"/admin/explain?user_id={admin.user_id}&object=customer"
                    f"&record_id={row['id']}&operation=edit")
    assert 'id="allowed"' in html and html.count('class="list-group-item reason"') == 1


def test_roles_module_reads_what_the_page_wrote(web, api, session):
    """The page writes through the engine: the engine's own read sees the role."""
    web.post("/admin/roles", {"name": "auditor", "label_en": "Auditor", "label_zh": "审计"})
    assert roles.role_id(session, "auditor") == role_id(api, "auditor")
