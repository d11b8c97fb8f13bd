"""What an admin can change in metadata, as pure edits of a draft of the documents.

Each edit checks what only it knows (the field exists, the name is free, a purge names an
archived field) and raises ``EditRefused`` with the path it concerns. Everything else, from
name patterns and reserved words to lookup targets and formulas, is checked afterwards on
the whole draft by the same JSON Schema and cross-checks as ``metacrm validate``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from metacrm.metadata.fieldtypes import InvalidValue
from metacrm.metadata.loader import Document, TemplateSet
from metacrm.metadata.messages import Message
from metacrm.metadata.settings import build_setting

# Keys of a field an edit may not change: the API name and the stable key name the column.
IMMUTABLE_FIELD_KEYS = ("name", "key")


class EditRefused(Exception):
    """An edit that cannot apply; ``path`` names the part of the request it concerns."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


# The top-level key that names a document of each kind (as the store keys them).
NAME_KEYS = {"object": "object", "picklist": "name", "template": "template",
             "stage_process": "stage_process", "approval_flow": "approval_flow", "role": "name",
             "setting": "name"}


def doc_key(kind: str, content: dict) -> str:
    return content.get("key", content[NAME_KEYS[kind]]) if kind != "template" \
        else content["template"]


@dataclass
class Draft:
    """The effective documents (base merged with overlay), copied so edits may mutate them."""

    documents: dict[tuple[str, str], dict] = field(default_factory=dict)

    @classmethod
    def copy_of(cls, documents: dict[tuple[str, str], dict]) -> Draft:
        return cls(copy.deepcopy(documents))

    def named(self, kind: str) -> dict[str, dict]:
        return {c[NAME_KEYS[kind]]: c for (k, _), c in self.documents.items() if k == kind}

    def object(self, name: str) -> dict:
        found = self.named("object").get(name)
        if found is None:
            raise EditRefused("object", Message("there is no object '%(name)s'", name=name))
        return found

    def picklist(self, name: str) -> dict:
        found = self.named("picklist").get(name)
        if found is None:
            raise EditRefused("picklist", Message("there is no picklist '%(name)s'", name=name))
        return found

    def put(self, kind: str, content: dict) -> None:
        self.documents[(kind, doc_key(kind, content))] = content

    def as_template_set(self) -> TemplateSet:
        """The draft as the loader's documents, so ``check_template_set`` can judge it."""
        docs = [Document("object", c["object"], f"object {c['object']}", c)
                for c in self.named("object").values()]
        picklists = list(self.named("picklist").values())
        if picklists:
            docs.append(Document("picklists", "picklists", "picklists",
                                 {"picklists": picklists}))
        docs.extend(Document("template", c["template"], f"template {c['template']}", c)
                    for (k, _), c in self.documents.items() if k == "template")
        for kind in ("stage_process", "approval_flow"):
            docs.extend(Document(kind, c[kind], f"{kind.replace('_', ' ')} {c[kind]}", c)
                        for c in self.named(kind).values())
        roles = list(self.named("role").values())
        if roles:
            docs.append(Document("roles", "roles", "roles", {"roles": roles}))
        settings = list(self.named("setting").values())
        if settings:
            docs.append(Document("settings", "settings", "settings", {"settings": settings}))
        return TemplateSet(docs)


# -- objects ------------------------------------------------------------------------------
def create_object(draft: Draft, raw: dict) -> None:
    """A new object with its title field; the rest of its fields are added one by one."""
    name = raw.get("object")
    if not isinstance(name, str) or not name:
        raise EditRefused("object", Message("an object needs an API name"))
    if name in draft.named("object"):
        raise EditRefused("object", Message("an object named '%(name)s' already exists", name=name))
    title = raw.get("title") or {}
    title_name = title.get("name") or "name"
    content = {"object": name, "label": raw.get("label")}
    for key in ("description", "icon", "group"):
        if raw.get(key):
            content[key] = raw[key]
    content["title_field"] = title_name
    content["features"] = list(raw.get("features") or [])
    content["fields"] = [{"name": title_name, "type": "text",
                          "label": title.get("label") or raw.get("label"), "required": True}]
    draft.put("object", content)


OBJECT_SETTINGS = ("label", "description", "icon", "group", "features", "title_field",
                   "search_fields")


def update_object(draft: Draft, name: str, changes: dict) -> None:
    obj = draft.object(name)
    for key, value in changes.items():
        if key not in OBJECT_SETTINGS:
            raise EditRefused(key, Message("this setting cannot be changed here"))
        if value is None or value == []:
            obj.pop(key, None)
        else:
            obj[key] = value


# -- fields -------------------------------------------------------------------------------
def _field(obj: dict, name: str) -> dict:
    found = next((f for f in obj["fields"] if f["name"] == name), None)
    if found is None:
        raise EditRefused("field", Message("object '%(object)s' has no field '%(name)s'",
                                           object=obj['object'], name=name))
    return found


def add_field(draft: Draft, object_name: str, raw: dict) -> None:
    obj = draft.object(object_name)
    name = raw.get("name")
    existing = next((f for f in obj["fields"] if f["name"] == name), None)
    if existing is not None:
        if existing.get("archived"):
            raise EditRefused("name", Message("a field named '%(name)s' already exists "
                                              "(archived: restore it instead)", name=name))
        raise EditRefused("name", Message("a field named '%(name)s' already exists", name=name))
    obj["fields"].append({k: v for k, v in raw.items() if v is not None})
    form = obj.get("layouts", {}).get("form")
    if form:
        form[-1]["fields"].append(name)


def update_field(draft: Draft, object_name: str, name: str, changes: dict) -> None:
    """Change a field's settings; ``None`` removes one. Its name and key stay."""
    f = _field(draft.object(object_name), name)
    for key, value in changes.items():
        if key in IMMUTABLE_FIELD_KEYS and value != f.get(key):
            raise EditRefused(key, Message("a field's API name cannot change; relabel it instead"))
        if value is None:
            f.pop(key, None)
        else:
            f[key] = value


def order_fields(draft: Draft, object_name: str, names: list[str]) -> None:
    """Put the named fields first, in this order; the others keep theirs, after them."""
    obj = draft.object(object_name)
    by_name = {f["name"]: f for f in obj["fields"]}
    unknown = [n for n in names if n not in by_name]
    if unknown or len(set(names)) != len(names):
        raise EditRefused("order", f"not a list of this object's fields: {', '.join(unknown)}"
                          if unknown else "a field is named twice")
    rest = [f for f in obj["fields"] if f["name"] not in set(names)]
    obj["fields"] = [by_name[n] for n in names] + rest
    position = {f["name"]: i for i, f in enumerate(obj["fields"])}
    forms = [obj.get("layouts", {}).get("form", []),
             *(bt.get("form", []) for bt in obj.get("business_types", []))]
    for section in (s for form in forms for s in form):  # the forms follow, per section
        section["fields"].sort(key=lambda n: position.get(n, len(position)))


def archive_field(draft: Draft, object_name: str, name: str) -> None:
    obj = draft.object(object_name)
    if name == obj["title_field"]:
        raise EditRefused("field", Message("the title field cannot be archived; choose another "
                                           "first"))
    _field(obj, name)["archived"] = True


def restore_field(draft: Draft, object_name: str, name: str) -> None:
    _field(draft.object(object_name), name).pop("archived", None)


def purge_field(draft: Draft, object_name: str, name: str) -> None:
    """Remove an archived field and every mention of it; its column is dropped."""
    obj = draft.object(object_name)
    if not _field(obj, name).get("archived"):
        raise EditRefused("field",
                          Message("only an archived field can be purged; archive it first"))
    obj["fields"] = [f for f in obj["fields"] if f["name"] != name]
    _forget(obj, name)


def _forget(obj: dict, name: str) -> None:
    """Take a field out of the layouts, search fields, indexes and business types."""
    def without(names: list[str]) -> list[str]:
        return [n for n in names if n != name]

    if "search_fields" in obj:
        obj["search_fields"] = without(obj["search_fields"]) or [obj["title_field"]]
    layouts = obj.get("layouts", {})
    for section in layouts.get("form", []):
        section["fields"] = without(section["fields"])
    layouts["form"] = [s for s in layouts.get("form", []) if s["fields"]] or None
    if "list" in layouts and "columns" in layouts["list"]:
        layouts["list"]["columns"] = without(layouts["list"]["columns"]) or [obj["title_field"]]
    for key in [k for k, v in layouts.items() if v is None]:
        del layouts[key]
    obj["indexes"] = [i for i in obj.get("indexes", []) if name not in i["fields"]]
    if not obj["indexes"]:
        del obj["indexes"]
    for bt in obj.get("business_types", []):
        for key in ("fields", "required"):
            if key in bt:
                bt[key] = without(bt[key])
        bt.get("picklists", {}).pop(name, None)


# -- picklists and options ----------------------------------------------------------------
def create_picklist(draft: Draft, raw: dict) -> None:
    if raw.get("name") in draft.named("picklist"):
        raise EditRefused("name", Message("a picklist named '%(name)s' already exists",
                                          name=raw.get('name')))
    draft.put("picklist", {"name": raw.get("name"), "label": raw.get("label"),
                           "options": list(raw.get("options") or [])})


def options_of(draft: Draft, picklist: str | None = None, object_name: str | None = None,
               field_name: str | None = None) -> list[dict]:
    """The option list edited: a shared picklist's, or a field's own."""
    if picklist:
        return draft.picklist(picklist)["options"]
    f = _field(draft.object(object_name or ""), field_name or "")
    if f.get("picklist"):
        return draft.picklist(f["picklist"])["options"]
    return f.setdefault("options", [])


def _option(options: list[dict], value: str) -> dict:
    found = next((o for o in options if o["value"] == value), None)
    if found is None:
        raise EditRefused("value", Message("there is no option '%(value)s'", value=value))
    return found


def add_option(options: list[dict], raw: dict) -> None:
    if any(o["value"] == raw.get("value") for o in options):
        raise EditRefused("value", Message("an option '%(value)s' already exists",
                                           value=raw.get('value')))
    options.append({k: v for k, v in raw.items() if v is not None})


OPTION_SETTINGS = ("label", "active", "color", "parents")


def update_option(options: list[dict], value: str, changes: dict) -> None:
    """Relabel, recolour, deactivate or reactivate an option; its stored value stays, so the
    records holding it keep it."""
    option = _option(options, value)
    for key, new in changes.items():
        if key not in OPTION_SETTINGS:
            raise EditRefused(key, Message("an option's value cannot change; relabel it instead"))
        if new is None or (key == "active" and new is True):
            option.pop(key, None)
        else:
            option[key] = new


def order_options(options: list[dict], values: list[str]) -> None:
    by_value = {o["value"]: o for o in options}
    if sorted(values) != sorted(by_value):
        raise EditRefused("order", Message("give every option's value exactly once"))
    options[:] = [by_value[v] for v in values]


# -- business types and layouts -----------------------------------------------------------
def put_business_type(draft: Draft, object_name: str, raw: dict) -> None:
    """Create a business type, or replace the one with this name."""
    types = draft.object(object_name).setdefault("business_types", [])
    clean = {k: v for k, v in raw.items() if v not in (None, [], {})}
    for i, bt in enumerate(types):
        if bt["name"] == raw.get("name"):
            types[i] = {**({"key": bt["key"]} if "key" in bt else {}), **clean}
            return
    types.append(clean)


def remove_business_type(draft: Draft, object_name: str, name: str) -> None:
    obj = draft.object(object_name)
    types = obj.get("business_types", [])
    if not any(bt["name"] == name for bt in types):
        raise EditRefused("business_type", Message("there is no business type '%(name)s'",
                                                   name=name))
    obj["business_types"] = [bt for bt in types if bt["name"] != name]
    if not obj["business_types"]:
        del obj["business_types"]


def set_layouts(draft: Draft, object_name: str, layouts: dict) -> None:
    """Replace the form sections, list settings and related lists (validated as a whole)."""
    obj = draft.object(object_name)
    clean = {k: v for k, v in layouts.items() if v}
    if clean:
        obj["layouts"] = clean
    else:
        obj.pop("layouts", None)


# -- rollback -----------------------------------------------------------------------------
def roll_back(draft: Draft, target: Draft) -> None:
    """Make the draft the target version, but archive (never drop) what was added since:
    an object the target lacks is archived, and so is a field."""
    current = draft.named("object")
    wanted = target.named("object")
    for (kind, key), content in target.documents.items():  # picklists: the target's, and
        if kind != "object":                                # those added since stay
            draft.documents[(kind, key)] = copy.deepcopy(content)
    for name, content in current.items():
        if name not in wanted:
            draft.put("object", {**content, "archived": True})
            continue
        restored = copy.deepcopy(wanted[name])
        keys = {f.get("key", f["name"]) for f in restored["fields"]}
        restored["fields"] += [{**f, "archived": True} for f in content["fields"]
                               if f.get("key", f["name"]) not in keys]
        draft.put("object", restored)
    for name, content in wanted.items():
        if name not in current:
            draft.put("object", copy.deepcopy(content))


# -- layout parts (admin pages) -------------------------------------------------------------
def set_layout_part(draft: Draft, object_name: str, part: str, value: list | dict | None) -> None:
    """Replace one part of the layouts (form, list or related), keeping the others. ``None``
    drops it (the default applies); an empty related list means no related lists at all."""
    if part not in ("form", "list", "related"):
        raise EditRefused("layouts", Message("there is no layout part '%(part)s'", part=part))
    obj = draft.object(object_name)
    layouts = dict(obj.get("layouts", {}))
    if value is None:
        layouts.pop(part, None)
    else:
        layouts[part] = value
    if layouts:
        obj["layouts"] = layouts
    else:
        obj.pop("layouts", None)


# -- business settings ----------------------------------------------------------------------
def set_settings(draft: Draft, values: dict[str, Any]) -> list[str]:
    """The admin's values of business settings (``None``: back to the default), each
    checked against its type, range and options; returns the names that changed."""
    declared = draft.named("setting")
    changed = []
    for name, raw in values.items():
        content = declared.get(name)
        if content is None:
            raise EditRefused(name, Message("there is no setting '%(name)s'", name=name))
        setting = build_setting(content)
        if raw is None:
            new = setting.default
        else:
            try:
                new = setting.coerce(raw)
            except InvalidValue as exc:
                raise EditRefused(name, exc.message) from None
        if new == setting.value:
            continue
        content.pop("value", None)
        if new != setting.default:
            content["value"] = setting.kind.to_json(new)
        changed.append(name)
    return changed
