"""The admin pages of stage processes and approval flows, and their diagrams (SVG drawn
from the definitions): every stage and step shown, every label escaped, admins only."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET

import pytest
import yaml

from metacrm.engine import instance
from metacrm.engine.flows import stages
from metacrm.metadata.flows import ApproverDef, StepDef, build_approval_flow
from metacrm.metadata.labels import Label
from metacrm.ui.admin import diagrams

from conftest import SAMPLE, SAMPLE_FLOWS, signed_in

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def engine(flows_engine):
    return flows_engine


def diagram(html: str) -> ET.Element:
    """The page's inline SVG, parsed: it must be well-formed XML."""
    found = re.search(r"<svg xmlns=.*?</svg>", html, re.S)
    assert found, "no diagram on the page"
    return ET.fromstring(found.group(0))


def texts(svg: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in svg.iter(f"{SVG}text")]


def shows(svg: ET.Element, text: str) -> bool:
    return any(text in line for line in texts(svg))


# -- the pages ----------------------------------------------------------------------------
def test_the_flows_page_lists_every_stage_process_and_approval_flow(web, registry):
    html = web.text("/admin/flows/")
    assert sorted(re.findall(r'data-process="(\w+)"', html)) == sorted(registry.stage_processes)
    assert sorted(re.findall(r'data-flow="(\w+)"', html)) == sorted(registry.approval_flows)
    assert "标准商机" in html and "项目型商机" in html  # the business types
    assert "amount &gt;= " in html  # the condition of large_opportunity


def test_the_admin_menu_leads_to_the_flows(web):
    assert 'href="/admin/flows/"' in web.text("/todo")


@pytest.mark.parametrize("name", ["opportunity_standard", "opportunity_project"])
def test_a_stage_process_page_draws_every_stage(web, registry, name):
    process = registry.stage_processes[name]
    obj = registry.object(process.object)
    html = web.text(f"/admin/flows/process/{name}")
    svg = diagram(html)
    for stage in process.stages:
        assert shows(svg, stages.stage_label(process, obj, stage).zh), stage.name
        for item in (*stage.work, *stage.key_events):
            assert shows(svg, item.label.zh), item.name
    assert re.findall(r'<tr data-stage="(\w+)"', html) == [s.name for s in process.stages]


def test_a_stage_that_needs_an_approval_names_the_flow(web):
    svg = diagram(web.text("/admin/flows/process/opportunity_project"))
    assert shows(svg, "投标评审")  # tender_review's label, on the tender stage


def test_a_key_event_that_needs_a_document_is_marked(web):
    svg = diagram(web.text("/admin/flows/process/opportunity_standard"))
    assert any("方案已发送" in line and "需上传文档" in line for line in texts(svg))


@pytest.mark.parametrize("name", ["large_opportunity", "tender_review"])
def test_an_approval_flow_page_draws_every_step(web, registry, name):
    flow = registry.approval_flows[name]
    html = web.text(f"/admin/flows/approval/{name}")
    svg = diagram(html)
    for step in flow.steps:
        assert shows(svg, step.label.zh), step.name
    assert re.findall(r'<tr data-step="(\w+)"', html) == [s.name for s in flow.steps]


def test_an_approval_flow_diagram_names_the_role_and_the_field_updates(web):
    svg = diagram(web.text("/admin/flows/approval/large_opportunity"))
    assert shows(svg, "财务")  # the finance role, by its label
    assert shows(svg, "审批状态 = 已通过") and shows(svg, "审批状态 = 已驳回")
    assert shows(svg, "amount >= ")


def test_an_approval_flow_page_names_the_updates_on_submit_and_withdraw(web):
    html = web.text("/admin/flows/approval/large_opportunity")
    assert shows(diagram(html), "提交时：审批状态 = 审批中")
    assert shows(diagram(html), "撤回时：审批状态 = 已撤回")
    facts = html[html.index('id="flow-facts"'):html.index("</dl>")]
    assert "提交时" in facts and "审批状态 = 审批中" in facts and "撤回时" in facts


def test_an_approval_flow_page_says_who_may_decide_and_whether_a_rejection_needs_a_reason(web):
    html = web.text("/admin/flows/approval/large_opportunity")
    submitter = html[html.index('id="flow-submitter"'):]
    assert submitter[:submitter.index("</dd>")].endswith("不能审批自己提交的申请：作为审批人时自动跳过，"
                                                         "转交和加签时也不可选")
    reason = html[html.index('id="flow-reject-reason"'):]
    assert reason[:reason.index("</dd>")].endswith("理由选填")


def test_a_stage_approval_flow_names_the_stage_it_guards(web):
    html = web.text("/admin/flows/approval/tender_review")
    assert shows(diagram(html), "招投标")
    assert 'href="/admin/flows/process/opportunity_project"' in html


def test_an_unknown_definition_is_not_found(web):
    assert web.get("/admin/flows/process/nothing").status_code == 404
    assert web.get("/admin/flows/approval/nothing").status_code == 404


@pytest.mark.parametrize("url", ["/admin/flows/", "/admin/flows/process/opportunity_standard",
                                 "/admin/flows/approval/large_opportunity"])
def test_other_users_may_not_see_the_flow_pages(app, people, url):
    zhang = signed_in(app, "zhang", "demo-password")
    assert zhang.get(url).status_code == 403


def test_the_flow_link_is_only_in_an_administrators_menu(app, people):
    assert 'href="/admin/flows/"' not in signed_in(app, "wang", "demo-password").text("/todo")


# -- hostile labels -----------------------------------------------------------------------
@pytest.fixture
def hostile(engine, tmp_path):
    """The sample flows with markup in a process's, a stage's, a work item's, a flow's
    and a step's labels."""
    folder = tmp_path / "flows"
    shutil.copytree(SAMPLE_FLOWS, folder)
    label = {"en": HOSTILE, "zh": HOSTILE}
    path = folder / "opportunity_standard.yaml"
    process = yaml.safe_load(path.read_text(encoding="utf-8"))
    process["label"] = label
    process["stages"][0]["label"] = label
    process["stages"][0]["work"][0]["label"] = {"en": '"quoted" & <b>', "zh": '"引号" & <b>'}
    path.write_text(yaml.safe_dump(process, allow_unicode=True), encoding="utf-8")
    (folder / "hostile.yaml").write_text(yaml.safe_dump({
        "approval_flow": "hostile", "label": label, "object": "opportunity",
        "trigger": "submit", "condition": "amount < 10 and name != '</svg>'",
        "steps": [{"name": "one", "label": label,
                   "approvers": {"type": "role", "role": "finance"}}]},
        allow_unicode=True), encoding="utf-8")
    instance.install(engine, [SAMPLE, folder])


@pytest.mark.parametrize("url", ["/admin/flows/", "/admin/flows/process/opportunity_standard",
                                 "/admin/flows/approval/hostile"])
def test_markup_in_a_label_is_shown_as_text(web, hostile, url):
    html = web.text(url)
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize("url", ["/admin/flows/process/opportunity_standard",
                                 "/admin/flows/approval/hostile"])
def test_a_diagram_with_markup_in_its_labels_stays_well_formed(web, hostile, url):
    svg = diagram(web.text(url))
    assert shows(svg, HOSTILE)
    assert not list(svg.iter(f"{SVG}script")) and not list(svg.iter("script"))


def test_quotes_and_ampersands_in_a_work_item_stay_text(web, hostile):
    svg = diagram(web.text("/admin/flows/process/opportunity_standard"))
    assert shows(svg, '"引号" & <b>')


# -- drawing (pure) -----------------------------------------------------------------------
def test_a_chinese_character_is_measured_as_a_full_em():
    assert diagrams.text_width("销售") == 2 * diagrams.SIZE
    assert diagrams.text_width("ab") < diagrams.SIZE * 2


def test_a_long_line_wraps_within_the_width():
    lines = diagrams.wrap("确认关键决策人" * 8 + " and some English words", 120)
    assert len(lines) > 2
    assert all(diagrams.text_width(line) <= 120 for line in lines)
    assert "".join(lines).replace(" ", "") == ("确认关键决策人" * 8 + "andsomeEnglishwords")


def flow_with(step_label: str):
    return build_approval_flow({"approval_flow": "f", "label": {"en": "F", "zh": "F"},
                                "object": "opportunity", "steps": [
                                    {"name": "s", "label": {"en": step_label, "zh": step_label},
                                     "approvers": {"type": "superior", "level": 1}}]})


def test_a_diagram_is_sized_by_its_content():
    short = ET.fromstring(diagrams.approval_flow_svg(flow_with("短"), None))
    long = ET.fromstring(diagrams.approval_flow_svg(flow_with("很长的审批步骤名称" * 4), None))
    assert int(long.get("width")) > int(short.get("width"))


@pytest.mark.parametrize("approvers, words", [
    (ApproverDef("superior", level=1), "Superior (level 1)"),
    (ApproverDef("role", role="finance"), "Role: 财务"),
    (ApproverDef("department_head"), "Department head (level 1)"),
    (ApproverDef("superior_chain", level=2), "Superiors one after another, 2 levels"),
    (ApproverDef("superior_chain", role="finance"),
     "Superiors one after another, up to the first 财务"),
    (ApproverDef("users", users=("li", "zhao")), "Named users: li, zhao"),
    (ApproverDef("submitter_chooses"), "Chosen by the submitter"),
])
def test_each_approver_type_is_described_in_words(approvers, words):
    step = StepDef("s", "s", Label("S", "S"), approvers)
    assert diagrams.approver_text(step, "zh", diagrams.plain,
                                  {"finance": Label("Finance", "财务")}) == words


def test_a_chain_of_superiors_approves_in_turn_whatever_its_mode():
    chain = StepDef("s", "s", Label("S", "S"), ApproverDef("superior_chain", level=2), "any")
    assert diagrams.mode_text(chain, diagrams.plain) == "Each in turn, all must approve"
    both = StepDef("s", "s", Label("S", "S"), ApproverDef("role", role="finance"), "all")
    assert diagrams.mode_text(both, diagrams.plain) == "Everyone must approve (会签)"
