"""Cross-reference checks beyond what JSON Schema can say, each with a stable code."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from metacrm.metadata.automation_checks import check_automations
from metacrm.metadata.computed import compile_object
from metacrm.metadata.fieldtypes import (
    FIELD_TYPES,
    SYSTEM_COLUMN_NAMES,
    SYSTEM_FIELDS,
    InvalidValue,
)
from metacrm.metadata.flow_checks import check_flows, known_roles_of
from metacrm.metadata.loader import Document, TemplateSet
from metacrm.metadata.messages import Message
from metacrm.metadata.model import ObjectDef, build_field, build_object, build_picklist
from metacrm.metadata.problems import Problem, format_path
from metacrm.metadata.reserved import RESERVED_WORDS
from metacrm.metadata.settings import SettingDef, check_settings, expression_settings

AUTO_NUMBER_TOKEN = re.compile(r"\{(seq(?::\d)?|yyyy|yy|mm|dd)\}")
SEQ_TOKEN = re.compile(r"\{seq(?::(\d))?\}")
RANGED_TYPES = ("integer", "decimal", "currency", "percent")  # the types min/max apply to
# What a field's ``demo`` hint may name (metacrm/engine/demo_values.py makes each kind).
DEMO_KINDS = ("company", "person", "gender", "job_title", "product", "address", "unit",
              "birthday", "none", "deal", "range", "pick", "where", "share")


def check_template_set(templates: TemplateSet, *, known_objects: set[str],
                       known_roles: Iterable[str] | None = (),
                       installed: Mapping[str, ObjectDef] | None = None,
                       installed_settings: Mapping[str, SettingDef] | None = None
                       ) -> list[Problem]:
    problems: list[Problem] = []
    objects = templates.of_kind("object")
    picklist_docs = templates.of_kind("picklists")
    picklists = {}
    for doc in picklist_docs:
        for i, raw in enumerate(doc.content["picklists"]):
            if raw["name"] in picklists:
                problems.append(Problem("picklist.duplicate", doc.source,
                                        doc.where(["picklists", i, "name"]),
                                        Message("picklist '%(name)s' is defined twice",
                                                name=raw['name'])))
            picklists[raw["name"]] = build_picklist(raw)
            problems.extend(_check_options(doc, ["picklists", i, "options"], raw["options"]))
    names = Counter(d.name for d in objects)
    for doc in objects:
        if names[doc.name] > 1:
            problems.append(Problem("object.duplicate", doc.source, "object",
                                    Message("object '%(name)s' is defined in more than one file",
                                            name=doc.name)))
    manifest = templates.manifest
    groups = {g["name"] for g in manifest.content.get("groups", [])} if manifest else None
    all_objects = known_objects | set(names)
    # A file the schema refused in part is checked for what it holds, but nothing compiles
    # against it: its formulas and flows may name the items left out.
    built = {doc.name: build_object(doc.content, picklists) for doc in objects
             if names[doc.name] == 1 and not doc.partial}
    fields_of = {doc.name: doc.content["fields"] for doc in objects if not doc.partial}
    declared, setting_problems = check_settings(templates.of_kind("settings"))
    problems.extend(setting_problems)
    settings = expression_settings({**(installed_settings or {}), **declared}.values())
    for doc in objects:
        problems.extend(ObjectChecker(doc, all_objects, picklists, groups, fields_of).run())
        if doc.name in built:
            problems.extend(computed_problems(doc, built[doc.name], built, settings))
    problems.extend(check_flows(templates, {**(installed or {}), **built}, all_objects,
                                known_roles, settings))
    problems.extend(check_automations(templates, {**(installed or {}), **built},
                                      known_roles_of(templates, known_roles), settings))
    return problems


def computed_problems(doc: Document, obj: ObjectDef, objects: dict[str, ObjectDef],
                      settings: Mapping[str, tuple[str, Any]]) -> list[Problem]:
    """Formulas, roll-ups, defaults, rules and filters compile against the whole set."""
    return [Problem(code, doc.source, format_path(path), message)
            for code, path, message in compile_object(obj, objects, settings).problems]


class ObjectChecker:
    """Checks one object document against itself and the set it belongs to."""

    def __init__(self, doc: Document, objects: set[str], picklists: dict, groups: set[str] | None,
                 documents: dict[str, list[dict]] | None = None):
        self.doc = doc
        self.documents = documents or {}  # object name -> its fields, for related lists
        self.raw = doc.content
        self.objects = objects
        self.picklists = picklists
        self.groups = groups
        self.fields = {f["name"]: f for f in self.raw["fields"]}
        self.broken = doc.broken  # left out by the schema: named, but not checked
        self.active = {n for n, f in self.fields.items() if not f.get("archived")} | doc.broken
        self.queryable = self.active | {"id", "owner", "business_type", "created_at",
                                        "created_by", "updated_at", "updated_by", "version"}

    def problem(self, code: str, path: list, message: str) -> Problem:
        return Problem(code, self.doc.source, self.doc.where(path), message)

    def run(self) -> list[Problem]:
        return list(self._names()) + list(self._fields()) + list(self._references())

    def _names(self) -> Iterator[Problem]:
        if self.raw["object"] in RESERVED_WORDS:
            yield self.problem("name.reserved", ["object"],
                               Message("'%(name)s' is an SQL reserved word",
                                       name=self.raw['object']))
        seen: set[str] = set()
        keys: set[str] = set()
        for i, f in enumerate(self.raw["fields"]):
            name, key = f["name"], f.get("key", f["name"])
            if name in seen:
                yield self.problem("field.duplicate", ["fields", i, "name"],
                                   Message("field '%(name)s' is defined twice", name=name))
            if key in keys:
                yield self.problem("field.duplicate_key", ["fields", i, "key"],
                                   Message("key '%(key)s' is used by another field", key=key))
            seen.add(name)
            keys.add(key)
            if name in SYSTEM_COLUMN_NAMES:
                yield self.problem("name.system", ["fields", i, "name"],
                                   Message("'%(name)s' is a system column", name=name))
            elif name in RESERVED_WORDS:
                yield self.problem("name.reserved", ["fields", i, "name"],
                                   Message("'%(name)s' is an SQL reserved word", name=name))
        bts = Counter(b["name"] for b in self.raw.get("business_types", []))
        for i, b in enumerate(self.raw.get("business_types", [])):
            if bts[b["name"]] > 1:
                yield self.problem("business_type.duplicate", ["business_types", i, "name"],
                                   Message("business type '%(name)s' is defined twice",
                                           name=b['name']))

    def _fields(self) -> Iterator[Problem]:
        for i, f in enumerate(self.raw["fields"]):
            kind = FIELD_TYPES[f["type"]]
            path: list[str | int] = ["fields", i]
            for key in kind.requires:
                if key == "options" and ("options" in f or "picklist" in f):
                    continue
                if key not in f:
                    yield self.problem("field.missing_option", path,
                                       Message("a %(type)s field needs '%(key)s'",
                                               type=f['type'], key=key))
            if "options" in f and not kind.options:
                yield self.problem("field.stray_option", [*path, "options"],
                                   Message("a %(type)s field has no options", type=f['type']))
            if "options" in f:
                yield from _check_options(self.doc, [*path, "options"],
                                          f["options"])
            if "picklist" in f and f["picklist"] not in self.picklists:
                yield self.problem("field.picklist", [*path, "picklist"],
                                   Message("picklist '%(picklist)s' does not exist",
                                           picklist=f['picklist']))
            if "target" in f and f["target"] not in self.objects:
                yield self.problem("field.target", [*path, "target"],
                                   Message("lookup target '%(target)s' is not a known object",
                                           target=f['target']))
            if "target" in f and kind.references != "target" and f["type"] != "lines":
                yield self.problem("field.stray_option", [*path, "target"],
                                   Message("a %(type)s field has no target", type=f['type']))
            if "dimension" in f and kind.references != "dimension":
                yield self.problem("field.stray_option", [*path, "dimension"],
                                   Message("a %(type)s field has no dimension", type=f['type']))
            if "max_length" in f and kind.storage != "string":
                yield self.problem("field.stray_option", [*path, "max_length"],
                                   Message("a %(type)s field has no maximum length",
                                           type=f['type']))
            if kind.storage == "decimal" and f.get("scale", kind.default_scale) >= f.get(
                    "precision", 18):
                yield self.problem("field.precision", [*path, "scale"],
                                   Message("scale must be smaller than precision"))
            yield from self._check_range(f, path)
            if "demo" in f and f["demo"].partition(":")[0] not in DEMO_KINDS:
                yield self.problem("field.demo", [*path, "demo"],
                                   Message("unknown demo kind '%(kind)s' (%(kinds)s)",
                                           kind=f["demo"].partition(":")[0],
                                           kinds=", ".join(DEMO_KINDS)))
            if f.get("unique") and not kind.sortable:
                yield self.problem("field.unique", [*path, "unique"],
                                   Message("a %(type)s field cannot be unique", type=f['type']))
            yield from self._check_computed_keys(f, path)
            if f["type"] == "auto_number":
                yield from self._check_pattern(f, path)
            if "default" in f and f["default"] is not None:
                yield from self._check_default(f, path)

    def _check_range(self, f: dict, path: list) -> Iterator[Problem]:
        """``min``/``max`` bound the value of a number a user types, and nothing else."""
        bounds = [key for key in ("min", "max") if key in f]
        if bounds and f["type"] not in RANGED_TYPES:
            for key in bounds:
                yield self.problem("field.stray_option", [*path, key],
                                   Message("a %(type)s field has no '%(key)s'",
                                           type=f['type'], key=key))
            return
        if len(bounds) == 2 and f["min"] > f["max"]:
            yield self.problem("field.range", [*path, "max"],
                               Message("max must not be smaller than min"))

    def _check_computed_keys(self, f: dict, path: list) -> Iterator[Problem]:
        """Keys that only some types take."""
        owners = {"expression": ("formula",), "rollup": ("rollup",), "via": ("lines",),
                  "returns": ("formula", "rollup"), "region_level": ("region",),
                  "master": ("lookup",)}  # filter and depends_on: computed.py says why
        for key, types in owners.items():
            if key in f and f["type"] not in types:
                yield self.problem("field.stray_option", [*path, key],
                                   Message("a %(type)s field has no '%(key)s'",
                                           type=f['type'], key=key))
        if f.get("master") and not f.get("required"):
            yield self.problem("field.master", [*path, "required"],
                               Message("a master lookup must be required: a line belongs to a "
                                       "parent"))

    def _check_pattern(self, f: dict, path: list) -> Iterator[Problem]:
        pattern = f.get("pattern")
        if not pattern:
            yield self.problem("field.missing_option", path,
                               Message("an auto_number field needs 'pattern'"))
        elif len(SEQ_TOKEN.findall(pattern)) != 1:
            yield self.problem("field.pattern", [*path, "pattern"],
                               Message("the pattern needs exactly one {seq} or {seq:N}"))
        elif re.search(r"[{}]", AUTO_NUMBER_TOKEN.sub("", pattern)):
            yield self.problem("field.pattern", [*path, "pattern"],
                               Message("unknown token; use {seq:N}, {yyyy}, {yy}, {mm}, {dd}"))

    def _check_default(self, f: dict, path: list) -> Iterator[Problem]:
        kind = FIELD_TYPES[f["type"]]
        if kind.references or kind.generated or kind.storage == "none":
            yield self.problem("field.default", [*path, "default"],
                               Message("a %(type)s field cannot have a constant default",
                                       type=f['type']))
            return
        definition = build_field(f, self.picklists)
        try:
            definition.kind.coerce(f["default"], definition)
        except InvalidValue as exc:
            yield self.problem("field.default", [*path, "default"],
                               Message("default %(problem)s", problem=exc.message))

    def _references(self) -> Iterator[Problem]:
        raw = self.raw
        if raw["title_field"] not in self.active:
            yield self.problem("object.title_field", ["title_field"],
                               Message("'%(name)s' is not a field of %(object)s",
                                       name=raw['title_field'], object=raw['object']))
        for i, name in enumerate(raw.get("search_fields", [])):
            field = self.fields.get(name)
            if name in self.broken:
                continue
            if field is None or name not in self.active:
                yield self.problem("object.search_field", ["search_fields", i],
                                   Message("'%(name)s' is not a field of %(object)s",
                                           name=name, object=raw['object']))
            elif not build_field(field, self.picklists).kind.searchable:
                yield self.problem("object.search_field", ["search_fields", i],
                                   Message("a %(type)s field cannot be searched by keyword",
                                           type=field['type']))
        layouts = raw.get("layouts", {})
        for i, name in enumerate(layouts.get("list", {}).get("columns", [])):
            if name not in self.queryable:
                yield self.problem("layout.column", ["layouts", "list", "columns", i],
                                   Message("'%(name)s' is not a field of %(object)s",
                                           name=name, object=raw['object']))
        for name in layouts.get("list", {}).get("sort", "").replace("-", "").split(","):
            if name and name not in self.queryable:
                yield self.problem("layout.sort", ["layouts", "list", "sort"],
                                   Message("'%(name)s' is not a field of %(object)s",
                                           name=name, object=raw['object']))
        for s, section in enumerate(layouts.get("form", [])):
            for i, name in enumerate(section["fields"]):
                if name not in self.active:
                    yield self.problem("layout.field", ["layouts", "form", s, "fields", i],
                                       Message("'%(name)s' is not a field of %(object)s",
                                               name=name, object=raw['object']))
        for b, bt in enumerate(raw.get("business_types", [])):
            yield from self._check_business_type(b, bt)
        for r, related in enumerate(layouts.get("related", [])):
            yield from self._check_related(r, related)
        for x, index in enumerate(raw.get("indexes", [])):
            for i, name in enumerate(index["fields"]):
                if name not in self.queryable:
                    yield self.problem("index.field", ["indexes", x, "fields", i],
                                       Message("'%(name)s' is not a field of %(object)s",
                                               name=name, object=raw['object']))
        if self.groups is not None and raw.get("group") and raw["group"] not in self.groups:
            yield self.problem("object.group", ["group"],
                               Message("navigation group '%(group)s' is not in the template "
                                       "manifest", group=raw['group']))

    def _check_business_type(self, b: int, bt: dict) -> Iterator[Problem]:
        for key in ("fields", "required"):
            for i, name in enumerate(bt.get(key, [])):
                if name not in self.active:
                    yield self.problem(f"business_type.{key.rstrip('s')}",
                                       ["business_types", b, key, i],
                                       Message("'%(name)s' is not a field of %(object)s",
                                               name=name, object=self.raw['object']))
        shown = set(bt.get("fields", [])) or self.active
        for i, name in enumerate(bt.get("required", [])):
            if name in self.active and name not in shown:
                yield self.problem("business_type.required", ["business_types", b, "required", i],
                                   Message("'%(name)s' is required but not among this type's "
                                           "fields", name=name))
        for s, section in enumerate(bt.get("form", [])):
            for i, name in enumerate(section["fields"]):
                if name not in self.active:
                    yield self.problem("business_type.form",
                                       ["business_types", b, "form", s, "fields", i],
                                       Message("'%(name)s' is not a field of %(object)s",
                                               name=name, object=self.raw['object']))
        for name, values in bt.get("picklists", {}).items():
            field = self.fields.get(name)
            path = ["business_types", b, "picklists", name]
            if name in self.broken:
                continue
            if field is None or not FIELD_TYPES[field["type"]].options:
                yield self.problem("business_type.picklist", path,
                                   Message("'%(name)s' is not a select field of %(object)s",
                                           name=name, object=self.raw['object']))
                continue
            allowed = {o.value for o in build_field(field, self.picklists).options}
            for i, value in enumerate(values):
                if value not in allowed:
                    yield self.problem("business_type.picklist", [*path, i],
                                       Message("'%(value)s' is not an option of %(field)s",
                                               value=value, field=name))


    def _check_related(self, r: int, related: dict) -> Iterator[Problem]:
        """A related list names an object, its lookup to this one, and that object's fields."""
        path = ["layouts", "related", r]
        other, name = related["object"], related["field"]
        if other not in self.objects:
            yield self.problem("layout.related", [*path, "object"],
                               Message("'%(name)s' is not a known object", name=other))
            return
        fields = self.raw["fields"] if other == self.raw["object"] else \
            self.documents.get(other)
        if fields is None:  # an object of another set: its fields are not known here
            return
        by_name = {f["name"]: f for f in fields if not f.get("archived")}
        f = by_name.get(name)
        if f is None or f["type"] != "lookup" or f.get("target") != self.raw["object"]:
            yield self.problem("layout.related", [*path, "field"],
                               Message("'%(name)s' is not a lookup from %(other)s to %(object)s",
                                       name=name, other=other, object=self.raw['object']))
        known = set(by_name) | {s.name for s in SYSTEM_FIELDS}
        for i, column in enumerate(related.get("columns", [])):
            if column not in known or by_name.get(column, {}).get("type") == "lines":
                yield self.problem("layout.related", [*path, "columns", i],
                                   Message("'%(name)s' is not a field of %(object)s",
                                           name=column, object=other))


def _check_options(doc: Document, path: list, options: list[dict]) -> Iterator[Problem]:
    seen: set[str] = set()
    for i, option in enumerate(options):
        if option["value"] in seen:
            yield Problem("option.duplicate", doc.source, doc.where([*path, i, "value"]),
                          Message("option '%(value)s' is listed twice", value=option['value']))
        seen.add(option["value"])
