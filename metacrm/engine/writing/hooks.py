"""The records service's hook catalogue: what features do on a write, in named phases.

The records core coerces, checks, writes and audits; everything a feature adds to a
write (stage rules, approval locks, line items, roll-ups, and later automations, pools,
state rules) is a ``Hook`` in one phase. The catalogue is installed once, in the order
``write_hooks.CATALOGUE`` declares, so the core never imports a feature and the order
is written in one place.

Phases, in the order a write meets them:

- ``guard``: a record is taken for a change (edit, delete, restore, a stage move),
  before any value is looked at; may refuse (a record locked by an approval).
- ``before_validate``: the input is coerced and checked on its own (types, options,
  field permissions, required fields); formulas, references and uniqueness are not yet
  checked. Hooks take the values of fields without a column and add their refusals to
  ``ctx.errors`` (one dict per row), raised together with the core's.
- ``before_write``: every check passed; the statement is next. May still refuse.
- ``after_write``: the rows are written and audited, in the same transaction.
- ``after_commit``: once the transaction commits (never if it rolls back).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from metacrm.engine.actor import Actor
from metacrm.engine.errors import EngineError
from metacrm.engine.schema.registry import Registry
from metacrm.metadata.model import ObjectDef

if TYPE_CHECKING:
    from metacrm.engine.writing.writer import Writer

__all__ = ["Hook", "HooksNotInstalled", "LINES", "PHASES", "RECORD", "WriteContext", "install",
           "installed", "run"]

Phase = Literal["guard", "before_validate", "before_write", "after_write", "after_commit"]
PHASES: tuple[Phase, ...] = ("guard", "before_validate", "before_write", "after_write",
                             "after_commit")
Operation = Literal["create", "update", "delete", "restore"]

# Who writes. A user path ("record"); the lines of a parent, written under the parent's
# checks ("lines"); or the feature that owns some fields, writing them ("stages").
RECORD = "record"
LINES = "lines"


@dataclass
class WriteContext:
    """One write as the hooks see it. ``rows``: the records written (a create's new
    rows, with their ids after the write; an update's one record as it will be);
    ``current``: the record before an update, delete or restore; ``changes``: an
    update's changed values; ``unstored``: per row, values of fields without a column;
    ``parent``: the write a line write belongs to; ``state``: room for the hooks."""

    session: Session
    registry: Registry
    obj: ObjectDef
    actor: Actor
    writer: Writer
    operation: Operation
    entry: str = RECORD
    rows: list[dict[str, Any]] = field(default_factory=list)
    current: dict[str, Any] | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    unstored: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)  # per row, raised by the core
    parent: WriteContext | None = None
    state: dict[str, Any] = field(default_factory=dict)
    reread: bool = False  # a hook changed stored values of the rows (their roll-ups)
    via: str | None = None  # what writes on the actor's behalf (an automation), audited

    @property
    def record_id(self) -> int:
        return self.rows[0]["id"] if self.rows else self.current["id"]  # type: ignore[index]

    @property
    def by_user(self) -> bool:
        return self.entry == RECORD

    @property
    def is_line(self) -> bool:
        return self.entry == LINES


@dataclass(frozen=True)
class Hook:
    """One behaviour on a write: its ``name`` shows in audit entries and refusals."""

    name: str
    phase: Phase
    operations: frozenset[str]
    run: Callable[[WriteContext], None]
    applies: Callable[[WriteContext], bool] = lambda ctx: True


class HooksNotInstalled(RuntimeError):
    """A write before ``write_hooks.install()``: it would silently skip features."""


_installed: dict[tuple[Phase, str], tuple[Hook, ...]] = {}
_catalogue: tuple[Hook, ...] = ()


def install(catalogue: tuple[Hook, ...]) -> None:
    """Make ``catalogue`` (in its order) the hooks every write runs."""
    global _catalogue
    names = [h.name for h in catalogue]
    if len(set(names)) != len(names):
        raise ValueError(f"hook names repeat: {names}")
    _catalogue = catalogue
    _listen()
    _installed.clear()
    for phase in PHASES:
        for op in ("create", "update", "delete", "restore"):
            _installed[(phase, op)] = tuple(h for h in catalogue
                                            if h.phase == phase and op in h.operations)


def installed() -> tuple[Hook, ...]:
    return _catalogue


def run(phase: Phase, ctx: WriteContext) -> None:
    """Run the phase's hooks for this write; ``after_commit`` ones wait for the commit."""
    if not _catalogue:
        raise HooksNotInstalled("call metacrm.engine.write_hooks.install() first")
    for hook in _installed[(phase, ctx.operation)]:
        if not hook.applies(ctx):
            continue
        if phase == "after_commit":
            _after_commit(ctx.session, hook, ctx)
            continue
        try:
            hook.run(ctx)
        except EngineError as exc:
            if exc.hook is None:  # the innermost hook refused (a line's, inside lines.write)
                exc.hook = hook.name
            raise


def _after_commit(session: Session, hook: Hook, ctx: WriteContext) -> None:
    session.info.setdefault(_PENDING, []).append((hook, ctx))


_PENDING = "metacrm.after_commit"


def _fire_pending(session: Session) -> None:
    for hook, ctx in session.info.pop(_PENDING, ()):
        hook.run(ctx)


def _forget_pending(session: Session, transaction: SessionTransaction) -> None:
    """The outermost transaction ended without a commit: its after-commit work is void
    (a savepoint's end is not the write's)."""
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


def _listen() -> None:
    for name, fn in (("after_commit", _fire_pending), ("after_transaction_end", _forget_pending)):
        if not event.contains(Session, name, fn):
            event.listen(Session, name, fn)
