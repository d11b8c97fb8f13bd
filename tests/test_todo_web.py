"""The todo centre (待办), the notifications and their counts in the navigation, over HTTP.

The demo company (``people``): 王经理 wang is the superior of the reps zhang and li;
qian is finance. The sample's ``large_opportunity`` flow asks the rep's superior, then
finance; the ``standard`` stage process gives its first stage (qualify) work due in three
days.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from metacrm.engine.actor import Actor
from metacrm.engine.flows import approvals, notifications, stages, transfer
from metacrm.engine.schema.registry import Registry
from metacrm.engine.systables import sys_notification, sys_todo
from metacrm.engine.writing import records

from conftest import Browser, signed_in

PASSWORD = "demo-password"


@pytest.fixture
def engine(flows_engine):
    return flows_engine


@dataclass
class Company:
    """The people, a browser each, and the records the tests make."""

    app: Any
    engine: sa.Engine
    registry: Registry
    people: dict[str, Actor]
    browsers: dict[str, Browser] = field(default_factory=dict)

    def user(self, name: str) -> Browser:
        if name not in self.browsers:
            self.browsers[name] = signed_in(
                self.app, name, "admin-password" if name == "admin" else PASSWORD)
        return self.browsers[name]

    def id(self, name: str) -> int:
        return self.people[name].user_id

    def deal(self, owner: str, name: str = "华东大单", amount: int = 600000) -> int:
        """A ``standard`` opportunity the owner creates."""
        actor = self.people[owner]
        with Session(self.engine) as s, s.begin():
            customer = records.create(s, self.registry, "customer", {"name": f"{name}客户"},
                                      actor=actor)["id"]
            return records.create(s, self.registry, "opportunity",
                                  {"name": name, "customer": customer, "amount": amount,
                                   "business_type": "standard"}, actor=actor)["id"]

    def submit(self, who: str, record_id: int) -> int:
        with Session(self.engine) as s, s.begin():
            return approvals.submit(s, self.registry, "opportunity", record_id,
                                    "large_opportunity", actor=self.people[who])

    def approve(self, who: str, approval_id: int) -> None:
        with Session(self.engine) as s, s.begin():
            approvals.approve(s, self.registry, approval_id, actor=self.people[who])

    def transfer(self, who: str, record_ids: list[int], to: str) -> None:
        with Session(self.engine) as s, s.begin():
            transfer.transfer(s, self.registry, self.people[who],
                              self.registry.object("opportunity"), record_ids, self.id(to))

    def todo_ids(self, user: str, kind: str, *, handled: bool = False) -> list[int]:
        t = sys_todo
        done = t.c.handled_at.is_not(None) if handled else t.c.handled_at.is_(None)
        with Session(self.engine) as s:
            return list(s.execute(sa.select(t.c.id).where(t.c.user_id == self.id(user),
                                                          t.c.kind == kind, done)
                                  .order_by(t.c.id)).scalars())


@pytest.fixture
def company(app, engine, registry, people) -> Company:
    return Company(app, engine, registry, people)


def rows(html: str, attribute: str) -> list[str]:
    return re.findall(rf'<tr {attribute}="(\d+)"', html)


def badge(html: str, ident: str) -> int:
    found = re.search(rf'id="{ident}">(\d+)<', html)
    return int(found.group(1)) if found else 0


# -- pending approvals --------------------------------------------------------------------
def test_the_todo_centre_lists_an_approval_waiting_for_the_approver(company):
    deal = company.deal("zhang")
    approval = company.submit("zhang", deal)
    html = company.user("wang").text("/todo")
    assert rows(html, "data-approval") == [str(approval)]
    assert "华东大单" in html and "大额商机审批" in html and "张伟" in html
    assert f'href="/approvals/{approval}"' in html


def test_the_submitter_has_no_approval_to_do(company):
    company.submit("zhang", company.deal("zhang"))
    assert rows(company.user("zhang").text("/todo"), "data-approval") == []


def test_a_pending_approval_counts_in_the_navigation(company):
    before = company.user("wang").text("/todo")
    company.submit("zhang", company.deal("zhang"))
    after = company.user("wang").text("/todo")
    assert badge(before, "todo-count") == 0 and badge(after, "todo-count") == 1
    assert badge(after, "approval-count") == 1
    assert 'href="/approvals"' in after and 'href="/notifications"' in after


def test_an_approved_task_leaves_the_approvers_todo_centre(company):
    approval = company.submit("zhang", company.deal("zhang"))
    company.approve("wang", approval)
    assert rows(company.user("wang").text("/todo"), "data-approval") == []
    assert rows(company.user("qian").text("/todo"), "data-approval") == [str(approval)]


# -- records assigned to me ---------------------------------------------------------------
def test_a_record_transferred_to_me_is_assigned_to_me(company):
    deal = company.deal("zhang", "转给李娜的商机")
    company.transfer("wang", [deal], "li")
    html = company.user("li").text("/todo?tab=assigned")
    [todo] = rows(html, "data-todo")
    assert f'href="/o/opportunity/{deal}"' in html and "转给李娜的商机" in html
    assert "王经理" in html  # who assigned it


def test_marking_an_assigned_todo_handled_moves_it_to_the_handled_tab(company):
    company.transfer("wang", [company.deal("zhang")], "li")
    [todo] = company.todo_ids("li", "assigned")
    li = company.user("li")
    li.get("/todo?tab=assigned")
    response = li.post(f"/todo/{todo}/handled", {"tab": "assigned"})
    assert response.status_code == 302 and response.location.endswith("/todo?tab=assigned")
    assert rows(li.text("/todo?tab=assigned"), "data-todo") == []
    assert rows(li.text("/todo?tab=handled"), "data-todo") == [str(todo)]


def test_a_handled_todo_can_be_reopened(company):
    company.transfer("wang", [company.deal("zhang")], "li")
    [todo] = company.todo_ids("li", "assigned")
    li = company.user("li")
    li.get("/todo")
    li.post(f"/todo/{todo}/handled")
    li.post(f"/todo/{todo}/reopen", {"tab": "handled"})
    assert rows(li.text("/todo?tab=assigned"), "data-todo") == [str(todo)]


def test_another_users_todo_cannot_be_marked_handled(company):
    company.transfer("wang", [company.deal("zhang")], "li")
    [todo] = company.todo_ids("li", "assigned")
    zhao = company.user("zhao")
    zhao.get("/todo")
    assert zhao.post(f"/todo/{todo}/handled").status_code == 404
    assert company.todo_ids("li", "assigned") == [todo]


def test_a_manager_is_offered_no_reopen_of_a_subordinates_handled_todo(company):
    company.deal("zhang")
    [todo] = company.todo_ids("zhang", "stage_work")
    zhang = company.user("zhang")
    zhang.get("/todo")
    zhang.post(f"/todo/{todo}/handled")
    html = company.user("wang").text(
        f"/todo?tab=stage_work&scene=handled&user={company.id('zhang')}")
    assert rows(html, "data-todo") == [str(todo)]
    assert 'data-action="reopen"' not in html  # the single reopen is the owner's own


def test_marking_a_todo_handled_needs_the_form_token(company):
    company.transfer("wang", [company.deal("zhang")], "li")
    [todo] = company.todo_ids("li", "assigned")
    response = company.user("li").client.post(f"/todo/{todo}/handled")
    assert response.status_code == 400
    assert company.todo_ids("li", "assigned") == [todo]


# -- stage work ---------------------------------------------------------------------------
def test_stage_work_due_appears_when_a_record_enters_a_stage(company):
    deal = company.deal("zhang", "新线索商机")
    html = company.user("zhang").text("/todo?tab=stage_work")
    assert len(rows(html, "data-todo")) == 1
    assert "确认关键决策人" in html  # the work item of qualify, in the user's language
    assert "验证客户" in html  # the stage, by its option label
    assert f'href="/o/opportunity/{deal}"' in html
    assert 'class="table-danger overdue"' not in html  # due in three days


def test_ticked_stage_work_leaves_the_open_todos(company):
    deal = company.deal("zhang")
    with Session(company.engine) as s, s.begin():
        stages.tick_work(s, company.registry, "opportunity", deal, "confirm_contact",
                         actor=company.people["zhang"])
    html = company.user("zhang").text("/todo?tab=stage_work")
    assert rows(html, "data-todo") == [] and badge(html, "todo-count") == 0


def test_the_tick_of_a_stage_work_todo_comes_first_as_in_every_todo_list(company):
    company.deal("zhang")
    html = company.user("zhang").text("/todo?tab=stage_work")
    row = re.search(r'<tr data-todo="\d+"[^>]*>\s*<td>(.*?)</td>', html, re.S)
    assert row and 'class="form-check-input todo-tick"' in row.group(1)


def test_overdue_stage_work_is_highlighted(company):
    company.deal("zhang")
    with Session(company.engine) as s, s.begin():
        s.execute(sa.update(sys_todo).values(
            due_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=1)))
    html = company.user("zhang").text("/todo?tab=stage_work")
    assert 'class="table-danger overdue"' in html


def test_the_todo_centre_reads_the_same_number_of_statements_for_more_todos(
        company, count_queries):
    zhang = company.user("zhang")
    company.deal("zhang", "一")
    zhang.get("/todo?tab=stage_work")
    with count_queries() as few:
        zhang.get("/todo?tab=stage_work")
    for name in ("二", "三", "四"):
        company.deal("zhang", name)
    with count_queries() as more:
        html = zhang.text("/todo?tab=stage_work")
    assert len(rows(html, "data-todo")) == 4
    assert more.count == few.count


def test_an_offset_past_every_todo_is_an_empty_page_not_a_server_error(company):
    approval = company.submit("zhang", company.deal("zhang"))
    wang = company.user("wang")
    for tab in ("approvals", "stage_work", "customer.next_contact"):
        response = wang.get(f"/todo?tab={tab}&offset=9223372036854775807")
        assert response.status_code == 200
        assert 'id="todo-empty"' in response.get_data(as_text=True)
    assert rows(wang.text("/todo?tab=approvals"), "data-approval") == [str(approval)]


# -- notifications ------------------------------------------------------------------------
def test_the_approver_is_told_of_a_submission(company):
    deal = company.deal("zhang", "需审批的商机")
    approval = company.submit("zhang", deal)
    html = company.user("wang").text("/notifications")
    assert 'data-kind="approval_submitted"' in html
    assert "大额商机审批" in html and "需审批的商机" in html and "张伟" in html
    assert f'href="/approvals/{approval}"' in html and f'href="/o/opportunity/{deal}"' in html
    assert badge(html, "unread-count") == 1


def test_the_submitter_is_told_of_the_approval(company):
    approval = company.submit("zhang", company.deal("zhang"))
    company.approve("wang", approval)
    company.approve("qian", approval)
    html = company.user("zhang").text("/notifications")
    assert re.search(r'class="[^"]*unread[^"]*" data-notification="\d+" '
                     r'data-kind="approval_approved"', html)


def test_notifications_come_newest_first(company):
    company.submit("zhang", company.deal("zhang", "一"))
    company.transfer("zhang", [company.deal("zhang", "二")], "wang")
    html = company.user("wang").text("/notifications")
    assert re.findall(r'data-kind="(\w+)"', html) == ["record_transferred",
                                                       "approval_submitted"]


def test_the_submitter_is_told_of_a_rejection(company):
    approval = company.submit("zhang", company.deal("zhang"))
    with Session(company.engine) as s, s.begin():
        approvals.reject(s, company.registry, approval, actor=company.people["wang"],
                         comment="金额有误")
    html = company.user("zhang").text("/notifications")
    assert re.findall(r'data-kind="(\w+)"', html) == ["approval_rejected"]
    assert "王经理" in html


def test_marking_all_read_clears_the_unread_badge(company):
    company.submit("zhang", company.deal("zhang", "一"))
    company.transfer("zhang", [company.deal("zhang", "二")], "wang")
    wang = company.user("wang")
    assert badge(wang.text("/notifications"), "unread-count") == 2
    response = wang.post("/notifications/read")
    assert response.status_code == 302
    html = wang.text("/notifications")
    assert badge(html, "unread-count") == 0 and 'unread fw-semibold' not in html


def test_one_notification_can_be_marked_read_and_unread_again(company):
    company.submit("zhang", company.deal("zhang", "一"))
    company.transfer("zhang", [company.deal("zhang", "二")], "wang")
    wang = company.user("wang")
    first = re.findall(r'data-notification="(\d+)"', wang.text("/notifications"))[0]
    wang.post("/notifications/read", {"id": first})
    assert badge(wang.text("/notifications"), "unread-count") == 1
    wang.post("/notifications/read", {"id": first, "unread": "1"})
    assert badge(wang.text("/notifications"), "unread-count") == 2


def test_notifications_are_paged_by_the_last_id_shown(company):
    with Session(company.engine) as s, s.begin():
        for _ in range(53):
            notifications.notify(s, [company.id("li")], "record_transferred",
                                 actor_id=company.id("wang"), object_name="opportunity",
                                 params={"count": 2})
    li = company.user("li")
    first = li.text("/notifications")
    shown = re.findall(r'data-notification="(\d+)"', first)
    older = re.search(r'id="older" href="/notifications\?before=(\d+)"', first)
    assert len(shown) == 50 and older and older.group(1) == shown[-1]
    rest = re.findall(r'data-notification="(\d+)"', li.text(f"/notifications?before={shown[-1]}"))
    assert len(rest) == 3 and int(rest[0]) < int(shown[-1])


def test_a_summary_of_several_transferred_records_links_to_the_list(company):
    company.transfer("wang", [company.deal("zhang", "一"), company.deal("zhang", "二")], "li")
    html = company.user("li").text("/notifications")
    assert 'href="/o/opportunity"' in html
    with Session(company.engine) as s:
        params = s.execute(sa.select(sys_notification.c.params)).scalar_one()
    assert params == {"count": 2}
