"""Definitions as frozen dataclasses, built from validated documents (pure: dict -> objects)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cached_property
from typing import Any

from metacrm.metadata.automations import AutomationDef, build_automations
from metacrm.metadata.fieldtypes import FIELD_TYPES, SYSTEM_FIELDS, FieldType, computed_kind
from metacrm.metadata.labels import Label


@dataclass(frozen=True)
class OptionDef:
    value: str
    key: str
    label: Label
    active: bool = True
    color: str | None = None
    parents: tuple[str, ...] = ()  # dependent picklists: the controlling values it is under


@dataclass(frozen=True)
class RollupDef:
    """A summary of child records: ``function`` of ``object.field`` over the children whose
    ``via`` lookup points at the record, and that satisfy ``filter``."""

    object: str
    via: str
    function: str
    field: str | None = None
    filter: str | None = None


@dataclass(frozen=True)
class ValidationRuleDef:
    name: str
    key: str
    condition: str
    message: Label
    fields: tuple[str, ...] = ()
    active: bool = True


@dataclass(frozen=True)
class PicklistDef:
    name: str
    key: str
    label: Label
    options: tuple[OptionDef, ...]


@dataclass(frozen=True)
class FieldDef:
    name: str
    key: str
    type: str
    label: Label
    help: Label | None = None
    required: bool = False
    unique: bool = False
    indexed: bool = False
    default: Any = None
    max_length: int | None = None
    precision: int = 18
    scale: int = 0
    min_value: Decimal | None = None  # numeric types: the range a value must lie in
    max_value: Decimal | None = None
    options: tuple[OptionDef, ...] = ()
    picklist: str | None = None
    target: str | None = None
    dimension: str | None = None
    pattern: str | None = None
    currency_symbol: str = "¥"
    archived: bool = False
    system: bool = False
    expression: str | None = None  # formula
    returns: str | None = None  # formula and roll-up: the value type
    rollup: RollupDef | None = None
    via: str | None = None  # lines: the child's master lookup
    master: bool = False  # lookup: master-detail
    default_expression: str | None = None
    filter: str | None = None  # lookup: candidates must satisfy it
    depends_on: str | None = None  # select: the controlling field
    region_level: int = 3
    demo: str | None = None  # what demo data fills it with (metacrm/engine/demo.py)

    @cached_property
    def kind(self) -> FieldType:
        base = FIELD_TYPES[self.type]
        return computed_kind(self.type, self.returns or "decimal") if base.computed else base

    @property
    def computed(self) -> bool:
        return self.kind.computed

    @property
    def stored(self) -> bool:
        """Whether the field has a column (line items are child records instead)."""
        return self.kind.storage != "none"

    @cached_property
    def text_limit(self) -> int | None:
        return self.max_length or self.kind.default_max_length

    @cached_property
    def option_values(self) -> tuple[str, ...]:
        return tuple(o.value for o in self.options if o.active)

    def option(self, value: str) -> OptionDef | None:
        return next((o for o in self.options if o.value == value), None)

    @property
    def column(self) -> str:
        return self.name

    @property
    def writable(self) -> bool:
        return not self.system and not self.kind.generated

    @property
    def target_object(self) -> str:
        """``target`` where the field must have one (a lookup's or lines' object, which the
        checks have found)."""
        if self.target is None:
            raise LookupError(f"field '{self.name}' points at no object")
        return self.target

    @property
    def dimension_tree(self) -> str:
        """``dimension`` of a dimension field, which the checks require."""
        if self.dimension is None:
            raise LookupError(f"field '{self.name}' names no dimension")
        return self.dimension


@dataclass(frozen=True)
class SectionDef:
    label: Label
    fields: tuple[str, ...]


@dataclass(frozen=True)
class BusinessTypeDef:
    name: str
    key: str
    label: Label
    departments: tuple[str, ...] = ()  # department names; empty: every department
    fields: tuple[str, ...] = ()  # empty: all fields
    picklists: dict[str, tuple[str, ...]] = field(default_factory=dict)
    required: tuple[str, ...] = ()  # on top of the fields' own
    form: tuple[SectionDef, ...] = ()  # empty: the object's layout

    def offered_to(self, departments: Iterable[str]) -> bool:
        """Whether a user in these departments (theirs and those above it) may pick it."""
        return not self.departments or not set(self.departments).isdisjoint(departments)


@dataclass(frozen=True)
class RelatedListDef:
    """A related list on the detail page: ``object`` records whose ``field`` looks this
    record up, showing ``columns`` (empty: the object's list columns)."""

    object: str
    field: str
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class IndexDef:
    fields: tuple[str, ...]
    unique: bool = False


@dataclass(frozen=True)
class ObjectDef:
    name: str
    key: str
    label: Label
    title_field: str
    fields: tuple[FieldDef, ...]
    search_fields: tuple[str, ...] = ()
    list_columns: tuple[str, ...] = ()
    default_sort: str = "-created_at"
    form: tuple[SectionDef, ...] = ()
    business_types: tuple[BusinessTypeDef, ...] = ()
    features: tuple[str, ...] = ()
    indexes: tuple[IndexDef, ...] = ()
    group: str | None = None
    icon: str | None = None
    description: Label | None = None
    archived: bool = False
    validation_rules: tuple[ValidationRuleDef, ...] = ()
    related: tuple[RelatedListDef, ...] | None = None  # None: every object looking it up
    automations: tuple[AutomationDef, ...] = ()

    @property
    def table_name(self) -> str:
        return f"o_{self.name}"

    @cached_property
    def all_fields(self) -> dict[str, FieldDef]:
        """Fields by name, archived included (their columns still exist)."""
        return {f.name: f for f in self.fields}

    @cached_property
    def active_fields(self) -> tuple[FieldDef, ...]:
        return tuple(f for f in self.fields if not f.archived)

    @cached_property
    def queryable(self) -> dict[str, FieldDef]:
        """Fields a request may name: the active stored fields plus the system fields."""
        out = {f.name: f for f in SYSTEM_FIELD_DEFS}
        if self.business_types:  # shown and filtered by their labels, like options
            out["business_type"] = replace(out["business_type"], options=tuple(
                OptionDef(value=b.name, key=b.key, label=b.label)
                for b in self.business_types))
        out.update({f.name: f for f in self.active_fields if f.stored})
        return out

    @cached_property
    def line_fields(self) -> tuple[FieldDef, ...]:
        return tuple(f for f in self.active_fields if f.type == "lines")

    @cached_property
    def master_field(self) -> FieldDef | None:
        """The master-detail lookup that makes this object the lines of another."""
        return next((f for f in self.active_fields if f.master), None)

    def field(self, name: str) -> FieldDef | None:
        return self.queryable.get(name)

    @cached_property
    def dimension_fields(self) -> tuple[FieldDef, ...]:
        """The dimension trees this object's data permissions are intersected with."""
        return tuple(f for f in self.active_fields if f.type == "dimension")

    def business_type(self, name: str) -> BusinessTypeDef | None:
        return next((b for b in self.business_types if b.name == name), None)

    def form_of(self, bt: BusinessTypeDef | None) -> tuple[SectionDef, ...]:
        """The form sections of a record of this type: its own, else the object's."""
        return bt.form if bt is not None and bt.form else self.form

    def required_of(self, bt: BusinessTypeDef | None) -> frozenset[str]:
        """The fields a record of this type must fill: the fields' own and the type's."""
        own = {f.name for f in self.active_fields if f.required}
        return frozenset(own | set(bt.required if bt else ()))


@dataclass(frozen=True)
class NavGroup:
    name: str
    label: Label
    order: int = 0


@dataclass(frozen=True)
class TemplateManifest:
    name: str
    version: str
    label: Label
    groups: tuple[NavGroup, ...] = ()


SYSTEM_FIELD_DEFS: tuple[FieldDef, ...] = tuple(
    FieldDef(name=s.name, key=s.name, type=s.type, label=Label.of(s.label), system=True)
    for s in SYSTEM_FIELDS
)
# Read in the recycle bin only: when and by whom a record was deleted.
RECYCLE_BIN_FIELD_DEFS: tuple[FieldDef, ...] = (
    FieldDef(name="deleted_at", key="deleted_at", type="datetime",
             label=Label(en="Deleted at", zh="删除时间"), system=True),
    FieldDef(name="deleted_by", key="deleted_by", type="user",
             label=Label(en="Deleted by", zh="删除人"), system=True),
)


def build_options(raw: list[dict]) -> tuple[OptionDef, ...]:
    return tuple(
        OptionDef(value=o["value"], key=o.get("key", o["value"]),
                  label=Label.of(o.get("label"), o["value"]), active=o.get("active", True),
                  color=o.get("color"), parents=tuple(o.get("parents", ())))
        for o in raw
    )


def build_picklist(raw: dict) -> PicklistDef:
    return PicklistDef(name=raw["name"], key=raw.get("key", raw["name"]),
                       label=Label.of(raw.get("label"), raw["name"]),
                       options=build_options(raw.get("options", [])))


def _bound(value: Any) -> Decimal | None:
    """A ``min``/``max`` as written (a YAML int or float) as an exact decimal."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return Decimal(str(value))


def build_field(raw: dict, picklists: dict[str, PicklistDef]) -> FieldDef:
    kind = FIELD_TYPES[raw["type"]]
    rollup = raw.get("rollup")
    returns = raw.get("returns")
    if kind.computed:
        if returns is None:
            returns = "integer" if rollup and rollup.get("function") == "count" else "decimal"
        kind = FIELD_TYPES[returns]
    options: tuple[OptionDef, ...] = build_options(raw.get("options", []))
    if raw.get("picklist") and raw["picklist"] in picklists:
        options = picklists[raw["picklist"]].options
    return FieldDef(
        name=raw["name"], key=raw.get("key", raw["name"]), type=raw["type"],
        label=Label.of(raw.get("label"), raw["name"]),
        help=Label.of(raw["help"]) if raw.get("help") else None,
        required=raw.get("required", False), unique=raw.get("unique", False),
        indexed=raw.get("indexed", False), default=raw.get("default"),
        max_length=raw.get("max_length"), precision=raw.get("precision", 18),
        scale=raw.get("scale", kind.default_scale), options=options,
        min_value=_bound(raw.get("min")), max_value=_bound(raw.get("max")),
        picklist=raw.get("picklist"), target=raw.get("target"), pattern=raw.get("pattern"),
        dimension=raw.get("dimension"),
        currency_symbol=raw.get("currency_symbol", "¥"), archived=raw.get("archived", False),
        expression=raw.get("expression"), returns=returns,
        rollup=RollupDef(object=rollup["object"], via=rollup["via"],
                         function=rollup["function"], field=rollup.get("field"),
                         filter=rollup.get("filter")) if rollup else None,
        via=raw.get("via"), master=raw.get("master", False),
        default_expression=raw.get("default_expression"), filter=raw.get("filter"),
        depends_on=raw.get("depends_on"), region_level=raw.get("region_level", 3),
        demo=raw.get("demo"),
    )


def build_object(raw: dict, picklists: dict[str, PicklistDef] | None = None) -> ObjectDef:
    picklists = picklists or {}
    fields = tuple(build_field(f, picklists) for f in raw.get("fields", []))
    layouts = raw.get("layouts", {})
    list_layout = layouts.get("list", {})
    active = [f.name for f in fields if not f.archived]
    fields_by = {f.name: f for f in fields}
    return ObjectDef(
        name=raw["object"], key=raw.get("key", raw["object"]),
        label=Label.of(raw.get("label"), raw["object"]),
        title_field=raw["title_field"], fields=fields,
        search_fields=tuple(raw.get("search_fields", [raw["title_field"]])),
        list_columns=tuple(list_layout.get("columns", [n for n in active
                                                        if fields_by[n].stored][:6])),
        default_sort=list_layout.get("sort", "-created_at"),
        form=build_sections(layouts.get("form", [])) or
        (SectionDef(Label(en="Details", zh="基本信息"), tuple(active)),),
        business_types=tuple(build_business_type(b) for b in raw.get("business_types", [])),
        features=tuple(raw.get("features", [])),
        indexes=tuple(IndexDef(tuple(i["fields"]), i.get("unique", False))
                      for i in raw.get("indexes", [])),
        group=raw.get("group"), icon=raw.get("icon"),
        description=Label.of(raw["description"]) if raw.get("description") else None,
        archived=raw.get("archived", False),
        validation_rules=tuple(
            ValidationRuleDef(name=r["name"], key=r.get("key", r["name"]),
                              condition=r["condition"], message=Label.of(r["message"]),
                              fields=tuple(r.get("fields", ())), active=r.get("active", True))
            for r in raw.get("validation_rules", [])),
        related=tuple(RelatedListDef(r["object"], r["field"], tuple(r.get("columns", ())))
                      for r in layouts["related"]) if "related" in layouts else None,
        automations=build_automations(raw.get("automations", [])),
    )


def build_sections(raw: list[dict]) -> tuple[SectionDef, ...]:
    return tuple(SectionDef(Label.of(s.get("label")), tuple(s["fields"])) for s in raw)


def build_business_type(raw: dict) -> BusinessTypeDef:
    return BusinessTypeDef(
        name=raw["name"], key=raw.get("key", raw["name"]),
        label=Label.of(raw.get("label"), raw["name"]),
        departments=tuple(raw.get("departments", [])), fields=tuple(raw.get("fields", [])),
        picklists={k: tuple(v) for k, v in raw.get("picklists", {}).items()},
        required=tuple(raw.get("required", [])), form=build_sections(raw.get("form", [])))


def build_manifest(raw: dict) -> TemplateManifest:
    return TemplateManifest(
        name=raw["template"], version=str(raw.get("version", "0")),
        label=Label.of(raw.get("label"), raw["template"]),
        groups=tuple(NavGroup(g["name"], Label.of(g.get("label"), g["name"]), i)
                     for i, g in enumerate(raw.get("groups", []))),
    )
