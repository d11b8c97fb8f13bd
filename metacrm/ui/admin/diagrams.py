"""Diagrams of stage processes and approval flows, drawn from their frozen definitions as
SVG text (pure: no request, no database).

Every text goes through ``markupsafe`` (``Markup.format`` escapes its arguments), so a
label holding markup shows as text. Boxes are sized by an estimate of their text's width
(CJK characters count a full em), so Chinese labels fit as well as English ones.

UI words come from the ``gettext`` the caller passes (Flask-Babel's in a view); the
``_(...)`` calls below are what the catalogue extracts.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from metacrm.engine.flows.approvers import APPROVER_TYPES
from metacrm.engine.flows.stages import stage_label
from metacrm.metadata.flows import ApprovalFlowDef, StageDef, StageProcessDef, StepDef
from metacrm.metadata.labels import Label
from metacrm.metadata.model import ObjectDef

Words = Callable[..., str]

FONT = ("system-ui, -apple-system, 'Segoe UI', 'PingFang SC', 'Hiragino Sans GB', "
        "'Microsoft YaHei', 'Noto Sans CJK SC', sans-serif")
SIZE, TITLE_SIZE, LINE, HEADER = 12, 13, 18, 26
PAD, MARGIN, GAP, MIN_WIDTH, MAX_TEXT = 10, 16, 40, 150, 240
INK, MUTED = "#212529", "#6c757d"


@dataclass(frozen=True)
class Palette:
    fill: str
    stroke: str


OPEN = Palette("#f3f7ff", "#3d6fd8")
GATED = Palette("#fff8eb", "#c77700")  # a stage whose moving on needs an approval
WON = Palette("#edf8f0", "#198754")
LOST = Palette("#fdf0f0", "#c9303e")
START = Palette("#f1f3f5", "#495057")
STEP = Palette("#f3f7ff", "#3d6fd8")


def plain(string: str, **variables: Any) -> str:
    """A stand-in for gettext: the English text, formatted as Flask-Babel would."""
    return string % variables if variables else string


# -- text measure -------------------------------------------------------------------------
def char_width(ch: str, size: float) -> float:
    if unicodedata.east_asian_width(ch) in ("W", "F", "A") or ord(ch) > 0xFFFF:
        return size  # CJK, full-width forms, symbols, emoji
    if ch.isupper() or ch in "mw@%":
        return size * 0.76
    if ch in "iljtf.,:;'|!()[] ":
        return size * 0.38
    return size * 0.63


def text_width(text: str, size: float = SIZE, bold: bool = False) -> float:
    """An estimate on the wide side: the fonts a browser picks differ."""
    return sum(char_width(ch, size) for ch in text) * (1.1 if bold else 1)


def wrap(text: str, width: float, size: float = SIZE) -> list[str]:
    """Lines of at most ``width``; breaks after spaces and between CJK characters."""
    lines, current, used = [], "", 0.0
    for ch in text:
        w = char_width(ch, size)
        if used + w > width and current:
            cut = current.rfind(" ")
            if cut > len(current) // 2 and not ch.isspace():
                lines.append(current[:cut])
                current = current[cut + 1:]
                used = text_width(current, size)
            else:
                lines.append(current.rstrip())
                current, used = "", 0.0
            if ch.isspace():
                continue
        current += ch
        used += w
    if current or not lines:
        lines.append(current)
    return lines


# -- boxes --------------------------------------------------------------------------------
@dataclass
class Line:
    text: str
    colour: str = INK
    bold: bool = False
    size: int = SIZE


@dataclass
class Box:
    title: str
    palette: Palette
    subtitle: str = ""
    lines: list[Line] = field(default_factory=list)
    rounded: int = 6

    def add(self, text: str, colour: str = INK, *, bold: bool = False,
            indent: str = "") -> None:
        """A line, wrapped; continuation lines start with ``indent``."""
        for i, part in enumerate(wrap(text, MAX_TEXT - text_width(indent))):
            self.lines.append(Line(indent + part if i else part, colour, bold))

    @property
    def width(self) -> float:
        widest = max([text_width(self.title, TITLE_SIZE, True) + text_width(self.subtitle) + 8,
                      *(text_width(line.text, line.size, line.bold) for line in self.lines)])
        return max(MIN_WIDTH, round(widest + 2 * PAD))

    @property
    def height(self) -> float:
        return HEADER + PAD + LINE * len(self.lines) + (PAD if self.lines else 0)


def _box(box: Box, x: float, y: float, width: float, height: float) -> Markup:
    p = box.palette
    out = [Markup('<g class="box"><rect x="{}" y="{}" width="{}" height="{}" rx="{}" '
                  'fill="{}" stroke="{}" stroke-width="1.5"/>').format(
        x, y, width, height, box.rounded, p.fill, p.stroke),
        Markup('<path d="M{x} {yb} V{yr} Q{x} {y} {xr} {y} H{xe} Q{xw} {y} {xw} {yr} V{yb} Z" '
               'fill="{c}"/>').format(x=x, y=y, yb=y + HEADER, yr=y + box.rounded,
                                      xr=x + box.rounded, xe=x + width - box.rounded,
                                      xw=x + width, c=p.stroke),
        Markup('<text x="{}" y="{}" fill="#fff" font-size="{}" font-weight="600">{}'
               ).format(x + PAD, y + HEADER - 8, TITLE_SIZE, box.title)]
    if box.subtitle:
        out.append(Markup('<tspan font-size="{}" font-weight="400" dx="6" '
                          'fill-opacity="0.85">{}</tspan>').format(SIZE - 1, box.subtitle))
    out.append(Markup("</text>"))
    for i, line in enumerate(box.lines):
        out.append(Markup('<text x="{}" y="{}" fill="{}" font-size="{}"{}>{}</text>').format(
            x + PAD, y + HEADER + PAD + LINE * i + 12, line.colour, line.size,
            Markup(' font-weight="600"') if line.bold else "", line.text))
    out.append(Markup("</g>"))
    return Markup("").join(out)


def _arrow(x1: float, y1: float, x2: float, y2: float, marker: str, colour: str = MUTED,
           dashed: bool = False) -> Markup:
    mid = (x1 + x2) / 2
    path = f"M{x1:g} {y1:g} L{x2:g} {y2:g}" if y1 == y2 else \
        f"M{x1:g} {y1:g} C{mid:g} {y1:g} {mid:g} {y2:g} {x2:g} {y2:g}"
    return Markup('<path d="{}" fill="none" stroke="{}" stroke-width="1.5"{} '
                  'marker-end="url(#{})"/>').format(
        path, colour, Markup(' stroke-dasharray="5 4"') if dashed else "", marker)


def _svg(body: Sequence[Markup], width: float, height: float, title: str, ident: str
         ) -> Markup:
    defs = Markup("").join(Markup(
        '<marker id="{id}-{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" '
        'fill="{c}"/></marker>').format(id=ident, name=name, c=colour)
        for name, colour in (("arrow", MUTED), ("won", WON.stroke), ("lost", LOST.stroke)))
    content = Markup("").join(body)
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" class="flow-diagram" id="{id}" width="{w}" '
        'height="{h}" viewBox="0 0 {w} {h}" role="img" aria-labelledby="{id}-title" '
        'font-family="{font}"><title id="{id}-title">{title}</title><defs>{defs}</defs>'
        '{content}</svg>').format(id=ident, w=round(width), h=round(height), font=FONT,
                                  title=title, defs=defs, content=content)


def _row(boxes: Sequence[Box], x: float, y: float, height: float, ident: str
         ) -> tuple[list[Markup], list[tuple[float, float]]]:
    """Boxes left to right joined by arrows; returns the parts and each box's x span."""
    parts, spans = [], []
    for i, box in enumerate(boxes):
        if i:
            parts.append(_arrow(x - GAP + 2, y + HEADER / 2 + 4, x - 2, y + HEADER / 2 + 4,
                                f"{ident}-arrow"))
        parts.append(_box(box, x, y, box.width, height))
        spans.append((x, x + box.width))
        x += box.width + GAP
    return parts, spans


def _column(boxes: Sequence[Box], x: float, y: float) -> tuple[list[Markup], list[float]]:
    """Boxes stacked, as wide as the widest; returns the parts and each box's middle y."""
    width = max((b.width for b in boxes), default=0)
    parts, middles = [], []
    for box in boxes:
        parts.append(_box(box, x, y, width, box.height))
        middles.append(y + box.height / 2)
        y += box.height + MARGIN
    return parts, middles


def _field_label(obj: ObjectDef | None, name: str, lang: str) -> str:
    f = (obj.all_fields.get(name) or obj.queryable.get(name)) if obj else None
    return f.label.get(lang) if f else name


def _value_text(obj: ObjectDef | None, name: str, value: Any, lang: str) -> str:
    f = obj.all_fields.get(name) if obj else None
    option = f.option(str(value)) if f is not None and f.options else None
    return option.label.get(lang) if option else str(value)


# -- stage processes ----------------------------------------------------------------------
def stage_title(process: StageProcessDef, obj: ObjectDef | None, stage: StageDef,
                lang: str) -> str:
    """The stage's own label, else its option's label in the stage field."""
    if obj is None or process.field not in obj.all_fields:
        return stage.label.get(lang) if stage.label else stage.name
    return stage_label(process, obj, stage).get(lang)


def _stage_box(process: StageProcessDef, obj: ObjectDef | None, stage: StageDef,
               index: int | None, lang: str, _: Words, flow_labels: Mapping[str, Label]
               ) -> Box:
    palette = WON if stage.type == "won" else LOST if stage.type == "lost" else \
        GATED if stage.approval else OPEN
    title = stage_title(process, obj, stage, lang)
    box = Box(f"{index}. {title}" if index is not None else title, palette, stage.name)
    rate = f"{stage.win_rate:g}"
    box.add(_("Win rate %(rate)s%%", rate=rate), bold=True)
    if stage.required:
        box.add(_("Required: %(fields)s", fields=", ".join(
            _field_label(obj, n, lang) for n in stage.required)))
    if stage.reason_field:
        box.add(_("Asks for: %(field)s", field=_field_label(obj, stage.reason_field, lang)))
    if stage.work:
        box.add(_("Stage work"), MUTED)
        for w in stage.work:
            due = " (" + _("within %(days)d days", days=w.due_days) + ")" \
                if w.due_days is not None else ""
            box.add(f"☐ {w.label.get(lang)}{due}", indent="   ")
    if stage.key_events:
        box.add(_("Key events"), MUTED)
        for e in stage.key_events:
            extra = f" +{e.share:g}%" if e.share else ""
            extra += " (" + _("needs a document") + ")" if e.attachment else ""
            extra += _(" (optional)") if not e.required else ""
            box.add(f"◆ {e.label.get(lang)}{extra}", indent="   ")
    if stage.approval:
        flow = flow_labels.get(stage.approval)
        box.add(_("Approval to move on: %(flow)s",
                  flow=flow.get(lang) if flow else stage.approval), GATED.stroke, bold=True)
    return box


def stage_process_svg(process: StageProcessDef, obj: ObjectDef | None, *, lang: str = "zh",
                      gettext: Words = plain, flow_labels: Mapping[str, Label] | None = None
                      ) -> Markup:
    """The open stages left to right; won and lost apart, in a column on the right."""
    _ = gettext
    flow_labels = flow_labels or {}
    opens = [_stage_box(process, obj, s, i + 1, lang, _, flow_labels)
             for i, s in enumerate(process.open_stages)]
    ends = [_stage_box(process, obj, s, None, lang, _, flow_labels)
            for s in process.stages if s.terminal]
    height = max((b.height for b in opens), default=0)
    ident = f"sp-{process.name}"
    parts, spans = _row(opens, MARGIN, MARGIN, height, ident)
    right = spans[-1][1] if spans else MARGIN - GAP
    end_x = right + GAP * 1.5
    end_parts, middles = _column(ends, end_x, MARGIN)
    parts += end_parts
    if spans:
        for stage, middle in zip((s for s in process.stages if s.terminal), middles,
                                 strict=True):
            won = stage.type == "won"
            parts.append(_arrow(right + 2, MARGIN + HEADER / 2 + 4, end_x - 2, middle,
                                f"{ident}-{'won' if won else 'lost'}",
                                WON.stroke if won else LOST.stroke, dashed=not won))
    end_width = max((b.width for b in ends), default=-GAP * 1.5)
    width = end_x + end_width + MARGIN
    height = MARGIN * 2 + max(height, sum(b.height + MARGIN for b in ends) - MARGIN)
    return _svg(parts, width, height, process.label.get(lang), ident)


# -- approval flows -----------------------------------------------------------------------
def approver_text(step: StepDef, lang: str, _: Words,
                  role_labels: Mapping[str, Label | str] | None = None) -> str:
    """Who approves a step, in words: "Superior (level 1)", "Role: Finance"…"""
    a = step.approvers

    def role(name: str | None) -> str:
        found = (role_labels or {}).get(name or "")
        return found.get(lang) if isinstance(found, Label) else found or name or ""

    if a.type == "users":
        return _("Named users: %(users)s", users=", ".join(a.users))
    if a.type == "role":
        return _("Role: %(role)s", role=role(a.role))
    if a.type == "superior":
        return _("Superior (level %(level)d)", level=a.level or 1)
    if a.type == "department_head":
        return _("Department head (level %(level)d)", level=a.level or 1)
    if a.type == "superior_chain":
        if a.level and a.role:
            return _("Superiors one after another, up to %(level)d levels or the first "
                     "%(role)s", level=a.level, role=role(a.role))
        if a.role:
            return _("Superiors one after another, up to the first %(role)s",
                     role=role(a.role))
        if a.level:
            return _("Superiors one after another, %(level)d levels", level=a.level)
        return _("Superiors one after another")
    if a.type == "submitter_chooses":
        return _("Chosen by the submitter")
    return a.type


def mode_text(step: StepDef, _: Words) -> str:
    kind = APPROVER_TYPES.get(step.approvers.type)
    if kind is not None and kind.sequential:
        return _("Each in turn, all must approve")
    if step.mode == "all":
        return _("Everyone must approve (会签)")
    return _("Any one approves (或签)")


def empty_text(step: StepDef, _: Words) -> str:
    if step.if_empty == "auto_approve":
        return _("No approver found: approved automatically")
    if step.if_empty == "reject":
        return _("No approver found: rejected")
    return _("No approver found: sent to an administrator")


def trigger_text(flow: ApprovalFlowDef, obj: ObjectDef | None, lang: str, _: Words) -> str:
    if flow.trigger == "stage":
        return _("On a stage move")
    if flow.trigger == "field_change":
        return _("When %(fields)s change", fields=", ".join(
            _field_label(obj, n, lang) for n in flow.trigger_fields))
    return _("When the submitter submits")


def updates_text(updates: Mapping[str, Any] | None, obj: ObjectDef | None, lang: str
                 ) -> list[str]:
    return [f"{_field_label(obj, name, lang)} = {_value_text(obj, name, value, lang)}"
            for name, value in (updates or {}).items()]


def approval_flow_svg(flow: ApprovalFlowDef, obj: ObjectDef | None, *, lang: str = "zh",
                      gettext: Words = plain,
                      role_labels: Mapping[str, Label | str] | None = None,
                      gated_stages: Iterable[str] = ()) -> Markup:
    """Start (trigger and condition) → the steps → approved and rejected, with the
    fields each outcome sets. ``gated_stages``: the stages whose moving on runs the flow."""
    _ = gettext
    start = Box(_("Start"), START, rounded=14)
    start.add(trigger_text(flow, obj, lang, _), bold=True)
    for stage in gated_stages:
        start.add(_("Leaving %(stage)s", stage=stage))
    start.add(_("If: %(condition)s", condition=flow.condition) if flow.condition
              else _("Every record"), MUTED)
    for text in updates_text(flow.on_submit, obj, lang):
        start.add(_("On submit: %(update)s", update=text))
    steps = []
    for i, step in enumerate(flow.steps):
        box = Box(_("Step %(number)d. %(label)s", number=i + 1, label=step.label.get(lang)),
                  STEP, step.name)
        box.add(approver_text(step, lang, _, role_labels), bold=True)
        box.add(mode_text(step, _))
        box.add(empty_text(step, _), MUTED)
        steps.append(box)
    approved = Box(_("Approved"), WON, rounded=14)
    for text in updates_text(flow.on_approve, obj, lang) or [_("No field changes")]:
        approved.add(text)
    rejected = Box(_("Rejected"), LOST, rounded=14)
    rejected.add(_("Returned to the submitter"))
    rejected.add(_("Resubmitted from the rejecting step") if flow.resubmit ==
                 "from_rejected_step" else _("Resubmitted from the first step"), MUTED)
    for text in updates_text(flow.on_reject, obj, lang):
        rejected.add(text)
    for text in updates_text(flow.on_withdraw, obj, lang):
        rejected.add(_("If withdrawn: %(update)s", update=text), MUTED)
    row = [start, *steps]
    height = max(b.height for b in row)
    ident = f"af-{flow.name}"
    parts, spans = _row(row, MARGIN, MARGIN, height, ident)
    right = spans[-1][1]
    end_x = right + GAP * 1.5
    end_parts, (won_y, lost_y) = _column([approved, rejected], end_x, MARGIN)
    parts += end_parts
    y = MARGIN + HEADER / 2 + 4
    parts.append(_arrow(right + 2, y, end_x - 2, won_y, f"{ident}-won", WON.stroke))
    parts.append(_arrow(right + 2, y, end_x - 2, lost_y, f"{ident}-lost", LOST.stroke,
                        dashed=True))
    width = end_x + max(approved.width, rejected.width) + MARGIN
    height = MARGIN * 2 + max(height, approved.height + MARGIN + rejected.height)
    return _svg(parts, width, height, flow.label.get(lang), ident)
