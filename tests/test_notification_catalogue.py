"""Notifications as an open catalogue: a job's dedupe key notifies nobody twice; kinds
worded by metadata (automations, reminders) show their own text in the reader's language;
the page filters by read state and by group; the API words them too. On SQLite and
PostgreSQL.

The demo company (``people``): 王经理 wang, the reps zhang and li, qian (finance).
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine.access import users
from metacrm.engine.flows import notifications
from metacrm.engine.systables import sys_notification

from conftest import signed_in

PASSWORD = "demo-password"
MESSAGE = {"en": "Call 华东科技 back today", "zh": "今天回访华东科技"}


@pytest.fixture
def notify(engine, people):
    """Notifies people by username, in a transaction of its own; the number written."""
    def send(who: list[str], kind: str, **kw) -> int:
        with Session(engine) as s, s.begin():
            return notifications.notify(s, [people[w].user_id for w in who], kind, **kw)
    return send


def stored(engine, user_id: int) -> list[tuple[str, str | None]]:
    n = sys_notification
    with Session(engine) as s:
        return [tuple(r) for r in s.execute(sa.select(n.c.kind, n.c.dedupe_key).where(
            n.c.user_id == user_id).order_by(n.c.id))]


def reader(app, engine, people, who: str, language: str):
    with Session(engine) as s, s.begin():
        users.set_language(s, people[who], language)
    return signed_in(app, who, PASSWORD)


def texts(html: str) -> list[str]:
    return re.findall(r'<div class="notification-text">([^<]*)', html)


# -- dedupe keys --------------------------------------------------------------------------
def test_notifying_twice_with_the_same_key_writes_one_row_per_user(engine, people, notify):
    key = "reminder:next_contact:customer:7:2026-03-01"
    assert notify(["zhang", "li"], "reminder", params={"message": MESSAGE},
                  dedupe_key=key) == 2
    assert notify(["zhang", "li", "qian"], "reminder", params={"message": MESSAGE},
                  dedupe_key=key) == 1  # only qian is new
    for who in ("zhang", "li", "qian"):
        assert stored(engine, people[who].user_id) == [("reminder", key)]


def test_a_rolled_back_run_leaves_its_key_free_for_the_next(engine, people):
    zhang = people["zhang"].user_id
    with Session(engine) as s:
        notifications.notify(s, [zhang], "reminder", params={"message": MESSAGE},
                             dedupe_key="k")
        s.rollback()  # the job died before committing
    with Session(engine) as s, s.begin():
        assert notifications.notify(s, [zhang], "reminder", params={"message": MESSAGE},
                                    dedupe_key="k") == 1
    assert stored(engine, zhang) == [("reminder", "k")]


def test_notifications_without_a_key_are_never_deduplicated(engine, people, notify):
    notify(["li"], "record_transferred", object_name="opportunity")
    notify(["li"], "record_transferred", object_name="opportunity")
    assert stored(engine, people["li"].user_id) == [("record_transferred", None)] * 2


def test_a_kind_outside_the_catalogue_is_refused(notify):
    with pytest.raises(ValueError, match="unknown notification kind"):
        notify(["li"], "approval_aproved")


def test_a_kind_worded_by_metadata_needs_its_message(notify):
    with pytest.raises(ValueError, match="message"):
        notify(["li"], "automation", params={"automation": "opportunity.won"})


# -- words ----------------------------------------------------------------------------------
def test_a_reminder_reads_in_chinese_for_a_chinese_reader(app, engine, people, notify):
    notify(["zhang"], "reminder", params={"message": MESSAGE})
    assert texts(reader(app, engine, people, "zhang", "zh").text("/notifications")) == [
        "今天回访华东科技"]


def test_an_automation_reads_in_english_for_an_english_reader(app, engine, people, notify):
    notify(["li"], "automation", params={"automation": "opportunity.won",
                                         "message": {"en": "Deal won: 苏州二期", "zh": "赢单：苏州二期"}})
    assert texts(reader(app, engine, people, "li", "en").text("/notifications")) == [
        "Deal won: 苏州二期"]


def test_a_message_without_chinese_falls_back_on_english(app, engine, people, notify):
    notify(["zhang"], "reminder", params={"message": {"en": "Contract ends in 7 days"}})
    assert texts(reader(app, engine, people, "zhang", "zh").text("/notifications")) == [
        "Contract ends in 7 days"]


def test_a_kind_the_ui_does_not_know_shows_the_message_it_carries(app, engine, people):
    with Session(engine) as s, s.begin():  # written by a later version, or another module
        s.execute(sa.insert(sys_notification).values(
            user_id=people["zhang"].user_id, kind="pool_recycled",
            params={"message": {"en": "Returned to the pool", "zh": "已退回公海"}},
            created_at=clock.now()))
    html = reader(app, engine, people, "zhang", "zh").text("/notifications")
    assert texts(html) == ["已退回公海"] and 'data-kind="pool_recycled"' in html


def test_markup_in_a_message_is_shown_as_text(app, engine, people, notify):
    notify(["zhang"], "reminder", params={"message": {"en": "<b>x</b>", "zh": "<b>x</b>"}})
    html = reader(app, engine, people, "zhang", "zh").text("/notifications")
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


# -- filters --------------------------------------------------------------------------------
def test_the_page_filters_by_group_and_by_read_state(app, engine, people, notify):
    notify(["zhang"], "reminder", params={"message": MESSAGE})
    notify(["zhang"], "record_transferred", object_name="opportunity")
    notify(["zhang"], "automation", params={"message": {"en": "done", "zh": "完成"}})
    zhang = reader(app, engine, people, "zhang", "zh")
    kinds = lambda url: re.findall(r'data-kind="(\w+)"', zhang.text(url))  # noqa: E731
    assert kinds("/notifications?group=reminders") == ["reminder"]
    assert kinds("/notifications?group=transfers") == ["record_transferred"]
    first = re.findall(r'data-notification="(\d+)"', zhang.text("/notifications"))[0]
    response = zhang.post("/notifications/read", {"id": first, "show": "unread"})
    assert response.headers["Location"] == "/notifications?show=unread"
    assert kinds("/notifications?show=unread") == ["record_transferred", "reminder"]
    assert kinds("/notifications?group=nonsense&show=all") == [
        "automation", "record_transferred", "reminder"]


# -- the API -------------------------------------------------------------------------------
def test_the_api_words_each_notification_in_the_callers_language(engine, people, notify,
                                                                   client_of):
    notify(["zhang"], "reminder", params={"message": MESSAGE})
    notify(["zhang"], "record_transferred", object_name="opportunity", params={"count": 2})
    with Session(engine) as s, s.begin():
        users.set_language(s, people["zhang"], "en")
    body = client_of("zhang").get("/api/v1/notifications").get_json()
    assert [(i["kind"], i["group"], i["text"]) for i in body["items"]] == [
        ("record_transferred", "transfers", "2 Opportunity records were transferred to you"),
        ("reminder", "reminders", "Call 华东科技 back today")]
    only = client_of("zhang").get("/api/v1/notifications?group=reminders").get_json()
    assert [i["kind"] for i in only["items"]] == ["reminder"]
    assert client_of("zhang").get("/api/v1/notifications?group=x").status_code == 400
