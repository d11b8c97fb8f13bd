"""Demo records that follow a stage process move through it as their owners would.

Each record is created in its first stage; some stay, the others move forward stage by
stage: the stage's work ticked, its key events done (with a document where one is
needed), the fields the next stage requires filled, and a stage approval decided by its
approvers. Some are won, some lost with a reason. Every step goes through the stage
engine and the approvals API, so a record is never won past a requirement or both won
and waiting for approval.
"""

from __future__ import annotations

from itertools import accumulate
from typing import Any

from sqlalchemy.orm import Session

from metacrm.engine.actor import Actor
from metacrm.engine.demo_values import ValueMaker
from metacrm.engine.errors import EngineError
from metacrm.engine.flows import approvals, stage_moves, stages
from metacrm.engine.schema.registry import Registry
from metacrm.metadata.flows import StageDef, StageProcessDef
from metacrm.metadata.model import ObjectDef

DOCUMENT = ("资料.pdf", "application/pdf", b"%PDF-1.4\n% demo document\n")


def walk_stages(session: Session, registry: Registry, obj: ObjectDef, ids: list[int],
                maker: ValueMaker, actor: Actor) -> None:
    walker = _Walker(session, registry, obj, maker, actor)
    # Each record draws from its own slice of [0, 1), the slices shuffled: the funnel
    # has its shape whatever the seed and however the records were drawn before.
    slots = list(range(len(ids)))
    maker.rng.shuffle(slots)
    for record_id, slot in zip(ids, slots, strict=True):
        walker.walk(record_id, (slot + maker.rng.random()) / len(ids))


class _Walker:
    def __init__(self, session: Session, registry: Registry, obj: ObjectDef,
                 maker: ValueMaker, actor: Actor):
        self.session, self.registry, self.obj = session, registry, obj
        self.maker, self.actor = maker, actor
        self.fields = {f.name: f for f in obj.active_fields}
        self.actors: dict[int, Actor | None] = {}

    def actor_of(self, user_id: int | None) -> Actor:
        from metacrm.engine.access import users

        if user_id is None:
            return self.actor
        if user_id not in self.actors:
            self.actors[user_id] = users.load_actor(self.session, user_id)
        return self.actors[user_id] or self.actor

    def path(self, process: StageProcessDef, draw: float) -> list[StageDef]:
        """Where a record goes, a funnel: about 30% stay in the first stage, fewer reach
        each later open stage, about 10% are won and 8% lost (``draw``: in [0, 1))."""
        steps = [s for s in process.stages if not s.terminal][1:]
        won = [s for s in process.stages if s.type == "won"]
        lost = [s for s in process.stages if s.type == "lost"]
        if draw < 0.3 or not steps and draw < 0.82:
            return []
        if draw < 0.4 and won:
            return [*steps, won[0]]
        if draw < 0.48 and lost:
            return [*steps[:self.maker.rng.randint(0, len(steps))], lost[0]]
        # The rest end in an open stage, the later the fewer (weights n, n-1, ... 1): where
        # the draw lies in what is left says which.
        weights = list(accumulate(range(len(steps), 0, -1)))
        point = max(draw - 0.48, 0) / 0.52 * (weights[-1] if weights else 0)
        return steps[:next((k for k, edge in enumerate(weights, 1) if point < edge),
                           len(steps))]

    def walk(self, record_id: int, draw: float) -> None:
        row = self.maker.rows[self.obj.name][record_id]
        process = stages.process_of(self.session, self.registry, self.obj, row)
        if process is None:
            return
        owner = self.actor_of(row.get("owner"))
        here = process.stage(row.get(process.field)) or process.first
        for target in self.path(process, draw):
            try:
                with self.session.begin_nested():
                    moved = self.step(record_id, row, process, here, target, owner)
            except EngineError:
                return
            if not moved:
                return
            here = target

    def step(self, record_id: int, row: dict[str, Any], process: StageProcessDef,
             here: StageDef, target: StageDef, owner: Actor) -> bool:
        """One move, the current stage's work and key events done first."""
        args = (self.session, self.registry, self.obj, record_id)
        if target.type != "lost":
            for work in here.work:
                stages.tick_work(*args, work.name, actor=owner)
            for event in here.key_events:
                stages.complete_event(*args, event.name, actor=owner,
                                      attachment=DOCUMENT if event.attachment else None)
        values: dict[str, Any] = {}
        needed = [*target.required, *([target.reason_field] if target.reason_field else [])]
        for name in needed:
            if row.get(name) in (None, "", []) and name in self.fields:
                value = self.maker.value(self.fields[name], record_id, row, self.fields)
                if value is None:
                    return False
                values[name] = row[name] = value
        result = stage_moves.move(*args, target.name, actor=owner, values=values)
        if result.moved:
            return True
        return result.approval_id is not None and self.decide(result.approval_id)

    def decide(self, approval_id: int) -> bool:
        """The approvers approve, step by step; True once the approval has passed."""
        for _ in range(20):
            approval = approvals.get(self.session, approval_id)
            if approval["status"] != "pending":
                return approval["status"] == "approved"
            active = [t for t in approvals.tasks(self.session, approval_id)
                      if t["status"] == "active"]
            if not active:
                return False
            approvals.approve(self.session, self.registry, approval_id,
                              actor=self.actor_of(active[0]["user_id"]))
        return False
