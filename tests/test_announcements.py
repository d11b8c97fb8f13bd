"""Announcements (公告): an administrator publishes in Admin → 公告; every user sees it as
the newest unread item and in the navigation's count until they mark it read; an expired
one is hidden from users and still listed for admins; only admins publish. On SQLite and
PostgreSQL, over HTTP.

The demo company (``people``): 王经理 wang, the reps zhang and li; ``admin``.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa
from openapi_spec_validator import validate
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine.errors import PermissionDenied
from metacrm.engine.flows import announcements
from metacrm.engine.systables import sys_announcement, sys_announcement_read

from conftest import signed_in

PASSWORD = "demo-password"
NOW = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)


@pytest.fixture
def frozen():
    with clock.frozen(NOW):
        yield


@pytest.fixture
def desk(app, people, frozen):
    """Signed-in browsers by username (the admin's password differs)."""
    made: dict = {}

    def user(name: str):
        if name not in made:
            made[name] = signed_in(app, name, "admin-password" if name == "admin" else PASSWORD)
        return made[name]
    return user


def publish(engine, people, title: str, body: str = "", expires_at=None) -> int:
    with Session(engine) as s, s.begin():
        return announcements.create(s, people["admin"], title=title, body=body,
                                    expires_at=expires_at)


def badge(html: str) -> int:
    found = re.search(r'id="announcement-count">(\d+)<', html)
    return int(found.group(1)) if found else 0


def shown(html: str) -> list[tuple[str, bool]]:
    """(id, unread) of each announcement on the page, in order."""
    return [(i, "unread" in cls) for cls, i in re.findall(
        r'<article class="([^"]*)" id="announcement-\d+" data-announcement="(\d+)"', html)]


def read_marks(engine, user_id: int) -> list[int]:
    """The announcements the user has marked read."""
    r = sys_announcement_read
    with Session(engine) as s:
        return list(s.execute(sa.select(r.c.announcement_id).where(r.c.user_id == user_id)
                              .order_by(r.c.announcement_id)).scalars())


# -- publishing ----------------------------------------------------------------------------
def test_an_admin_publishes_an_announcement_with_its_line_breaks(desk, engine):
    response = desk("admin").post("/admin/announcements", {
        "title": "春节放假通知", "body": "2月10日至17日放假。\r\n17日照常上班。",
        "expires_at": "2026-03-20T18:00"})
    assert response.status_code == 302
    with Session(engine) as s:
        row = s.execute(sa.select(sys_announcement)).one()
    assert (row.title, row.body) == ("春节放假通知", "2月10日至17日放假。\n17日照常上班。")
    assert row.expires_at is not None
    html = desk("zhang").text("/announcements")
    assert "2月10日至17日放假。\n17日照常上班。" in html and "white-space: pre-wrap" in html


def test_publishing_needs_the_form_token(desk, engine):
    admin = desk("admin")
    response = admin.client.post("/admin/announcements", data={"title": "无令牌"})
    assert response.status_code == 400
    with Session(engine) as s:
        assert s.execute(sa.select(sa.func.count()).select_from(sys_announcement)).scalar() == 0


def test_an_announcement_needs_a_title(desk):
    response = desk("admin").post("/admin/announcements", {"title": "  ", "body": "x"})
    assert response.status_code == 422
    assert 'data-field="title"' in response.get_data(as_text=True)


def test_a_bad_expiry_is_refused_with_its_field(desk):
    response = desk("admin").post("/admin/announcements", {"title": "t",
                                                            "expires_at": "next week"})
    assert response.status_code == 422
    assert 'data-field="expires_at"' in response.get_data(as_text=True)


def test_an_admin_edits_and_deletes_an_announcement(desk, engine, people):
    found = publish(engine, people, "错字公告")
    admin = desk("admin")
    assert "错字公告" in admin.text(f"/admin/announcements/{found}")
    admin.post(f"/admin/announcements/{found}", {"title": "更正公告", "body": "正文"})
    with Session(engine) as s:
        assert announcements.get(s, found)["title"] == "更正公告"
    assert admin.post(f"/admin/announcements/{found}/delete").status_code == 302
    assert admin.get(f"/admin/announcements/{found}").status_code == 404


@pytest.mark.parametrize("page", ["/admin/announcements", "/admin/announcements/1"])
def test_a_user_who_is_not_an_admin_cannot_reach_the_admin_pages(desk, engine, people, page):
    publish(engine, people, "公告")
    assert desk("zhang").get(page).status_code == 403
    assert desk("zhang").post("/admin/announcements", {"title": "x"}).status_code == 403


def test_the_engine_refuses_a_user_who_is_not_an_admin(engine, people):
    with Session(engine) as s, pytest.raises(PermissionDenied):
        announcements.create(s, people["zhang"], title="x", body="")


# -- reading -------------------------------------------------------------------------------
def test_a_new_announcement_is_unread_and_counted_until_marked_read(desk, engine, people):
    first = publish(engine, people, "第一条")
    with clock.frozen(NOW + dt.timedelta(minutes=5)):
        second = publish(engine, people, "第二条")
    zhang = desk("zhang")
    html = zhang.text("/announcements")
    assert shown(html) == [(str(second), True), (str(first), True)] and badge(html) == 2
    assert zhang.post("/announcements/read", {"id": second}).status_code == 302
    html = zhang.text("/announcements")
    assert shown(html) == [(str(second), False), (str(first), True)] and badge(html) == 1
    assert read_marks(engine, people["zhang"].user_id) == [second]
    assert badge(desk("li").text("/notifications")) == 2  # others still have both


def test_mark_all_read_clears_the_count(desk, engine, people):
    ids = [publish(engine, people, "一"), publish(engine, people, "二")]
    zhang = desk("zhang")
    zhang.post("/announcements/read")
    zhang.post("/announcements/read")  # twice: nothing more to mark, nothing fails
    assert badge(zhang.text("/announcements")) == 0
    assert read_marks(engine, people["zhang"].user_id) == ids


def test_the_author_has_read_his_own_announcement(desk, engine, people):
    found = publish(engine, people, "自己发的")
    assert read_marks(engine, people["admin"].user_id) == [found]
    assert badge(desk("admin").text("/announcements")) == 0


def test_marking_read_needs_the_form_token(desk, engine, people):
    found = publish(engine, people, "一")
    response = desk("zhang").client.post("/announcements/read", data={"id": found})
    assert response.status_code == 400 and read_marks(engine, people["zhang"].user_id) == []


def test_an_expired_announcement_is_hidden_from_users_and_listed_for_admins(
        desk, engine, people):
    gone = publish(engine, people, "已过期的公告", expires_at=NOW - dt.timedelta(hours=1))
    live = publish(engine, people, "仍有效的公告", expires_at=NOW + dt.timedelta(hours=1))
    html = desk("zhang").text("/announcements")
    assert shown(html) == [(str(live), True)] and badge(html) == 1
    listed = desk("admin").text("/admin/announcements")
    assert f'data-announcement="{gone}" class="text-muted expired"' in listed
    assert f'data-announcement="{live}"' in listed
    with clock.frozen(NOW + dt.timedelta(hours=2)):
        assert badge(desk("zhang").text("/announcements")) == 0


def test_an_expired_announcement_cannot_be_marked_read(engine, people):
    gone = publish(engine, people, "过期", expires_at=NOW - dt.timedelta(hours=1))
    with Session(engine) as s, s.begin():
        assert announcements.mark_read(s, people["zhang"].user_id, [gone]) == 0


# -- the API -------------------------------------------------------------------------------
def test_the_api_lists_announcements_and_marks_them_read(engine, people, client_of, frozen):
    found = publish(engine, people, "接口公告", "正文")
    zhang = client_of("zhang")
    body = zhang.get("/api/v1/announcements").get_json()
    assert [(a["id"], a["title"], a["read"]) for a in body["items"]] == [
        (found, "接口公告", False)] and body["unread"] == 1
    marked = zhang.post("/api/v1/announcements/read", json={"ids": [found]}).get_json()
    assert marked == {"marked": 1, "unread": 0}
    assert zhang.get("/api/v1/announcements?unread=1").get_json()["items"] == []


def test_only_an_admin_publishes_through_the_api(client_of, api, engine, frozen):
    refused = client_of("zhang").post("/api/v1/announcements", json={"title": "我要发公告"})
    assert refused.status_code == 403
    made = api.post("/api/v1/announcements", json={
        "title": "接口发布", "body": "a\nb", "expires_at": "2026-04-01T00:00:00+08:00"})
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["expires_at"] == "2026-03-31T16:00:00+00:00"
    with Session(engine) as s:
        assert s.execute(sa.select(sys_announcement.c.title)).scalars().all() == ["接口发布"]


@pytest.mark.parametrize("body", [{"title": ""}, {"title": "t", "expires_at": "soon"},
                                  {"title": "t", "expires_at": "2026-04-01T00:00"},
                                  {"title": ["t"]}, {"title": "t", "body": 3}])
def test_the_api_refuses_a_bad_announcement(api, body, frozen):
    assert api.post("/api/v1/announcements", json=body).status_code == 422


def test_the_openapi_document_describes_the_announcements_and_validates(anonymous):
    document = anonymous.get("/api/v1/openapi.json").get_json()
    validate(document)
    assert {"/announcements", "/announcements/{id}", "/announcements/read"} <= set(
        document["paths"])
    item = document["components"]["schemas"]["Notifications"]["properties"]["items"]
    assert {"text", "group"} <= set(item["items"]["properties"])
