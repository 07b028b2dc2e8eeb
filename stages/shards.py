"""Fan-out over shards, sized for Luigi's scheduler.

Every per-shard task keeps its own folder, marker and fingerprint, and runs alone
(``luigi --module stages Tile --shard 3``). What the scheduler sees of a whole split is a handful of
``<Task>Group`` tasks instead: a group stands for a run of consecutive shards, is complete when all of them
are, and runs the unfinished ones one after another (each through the configured runner). Luigi's
scheduler costs grow with the square of the pending tasks, so the task count per stage and split is capped
(``[pipeline] tasks_per_stage``) whatever the number of images: 100,000 images make as many tasks as 2,000.
Deleting one shard's folder makes its group incomplete, and a rerun recomputes that shard alone.

Groups of every stage are cut at the same shard boundaries (they depend on the split's shard count only), so
group g of a stage needs group g of the stage it reads shard by shard.
"""

from __future__ import annotations

from typing import ClassVar

import luigi

from stages import inputs
from stages.config import pipeline
from stages.tasking import StageTask, settings_state, split_parameter


def group_size(split: str) -> int:
    """Shards per group: the split's shards spread over at most ``tasks_per_stage`` groups."""
    shards = inputs.shard_count(split, ensure=True)
    return max(1, -(-shards // max(1, pipeline().tasks_per_stage)))


def group_count(split: str) -> int:
    shards = inputs.shard_count(split, ensure=True)
    return -(-shards // group_size(split)) if shards else 0


class ShardGroup(luigi.Task):
    """Consecutive shards of one per-shard task, as one Luigi task."""

    shard_task: ClassVar[type[StageTask]]

    def shard_params(self) -> dict:
        return {name: value for name, value in self.param_kwargs.items() if name != "group"}

    def members(self) -> list[StageTask]:
        state = settings_state()
        cached = self.__dict__.get("_members")
        if cached is None or cached[0] != state:
            size = group_size(self.split)
            first = self.group * size
            stop = min(first + size, inputs.shard_count(self.split, ensure=True))
            cached = (state, [self.shard_task(shard=shard, **self.shard_params()) for shard in range(first, stop)])
            self._members = cached
        return cached[1]

    def requires(self):
        members = self.members()
        if not members:
            return []
        example = members[0]
        required = {}
        for need in example.needs().values():
            if need.scope == "shard":
                upstream = example.needed(need)
                task = group_class(need.task)(group=self.group, **upstream.shard_free_params())
            else:
                task = example.required(need)
            required[task.task_id] = task
        return list(required.values())

    def complete(self) -> bool:
        return all(member.complete() for member in self.members())

    def run(self):
        pending = [member for member in self.members() if not member.complete()]
        for number, member in enumerate(pending):
            if self.set_status_message is not None:
                self.set_status_message(f"shard {member.shard} ({number + 1}/{len(pending)} of this group)")
            if self.set_progress_percentage is not None:
                self.set_progress_percentage(100 * number // len(pending))
            member.run()


class AllShards(luigi.WrapperTask):
    """One per-shard task over every shard of a split, through its groups: complete exactly when every
    shard is.

    The groups are static requirements, known when the graph is built (the manifest is made then if it is
    missing: one listing of the input). Every worker attached to a central luigid therefore sees every
    group; tasks yielded at run time would be visible to the worker that yielded them only.
    """

    shard_task: ClassVar[type[StageTask]]

    def shard_tasks(self) -> list[StageTask]:
        count = inputs.shard_count(self.split, ensure=True)
        return [self.shard_task(shard=shard, **self.param_kwargs) for shard in range(count)]

    def requires(self):
        return [group_class(self.shard_task.spec.name)(group=group, **self.param_kwargs)
                for group in range(group_count(self.split))]


def fan_out_classes(task: type[StageTask]) -> dict[str, type[luigi.Task]]:
    """``<Task>Group`` and ``<Task>All`` for a per-shard task class."""
    spec = task.spec
    shared = {"shard_task": task, "__module__": task.__module__, "split": split_parameter(spec), **spec.params}
    group = type(f"{spec.name}Group", (ShardGroup,), {
        **shared, "__doc__": f"Consecutive shards of {spec.name}, as one Luigi task.",
        "group": luigi.IntParameter(description="group index: shards group*size .. (group+1)*size-1")})
    whole = type(f"{spec.name}All", (AllShards,), {**shared, "__doc__": f"{spec.name} over every shard of a split."})
    return {group.__name__: group, whole.__name__: whole}


def group_class(name: str) -> type[ShardGroup]:
    from stages.tasking import task_class

    return task_class(f"{name}Group")
