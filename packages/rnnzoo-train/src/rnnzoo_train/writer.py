"""The interface through which the trainer writes a zoo.

The trainer never touches storage: it calls a :class:`ZooWriter`. The Zarr zoo store
(:mod:`rnnzoo_train.zoo`) implements it; :class:`MemoryZooWriter` is the reference
implementation used by trainer tests. Contract:

1. ``prepare_task(plan, task)`` is called once per task before anything is written. It
   creates the layout for every network of the plan (or, on an existing zoo, checks the plan
   is the one the zoo was created with and raises ``ValueError`` saying what differs).
2. ``completed(task)`` returns the ids of networks with a finished result, status ``"ok"``
   or ``"diverged"`` (a diverged network is a result, recorded with its last finite loss;
   retraining it would diverge again identically); generation skips them (resume) and
   retrains ``"failed"`` and missing ones. ``search(task)`` returns the recorded search trials.
3. ``write_search(task, trials)`` records a configuration's search trials and the choice;
   ``write_results(task, results)`` writes finished networks. Both are idempotent: writing
   the same network again overwrites it with identical values.
4. ``close()`` flushes and finalises metadata.

Determinism across resume and distribution: the trainer trains the networks of a plan in
fixed *work units* (a configuration's seeds, in plan order, chunked to a fixed size), and a
unit with any network not finished is retrained as a whole, so the floating-point work of a
resumed or distributed run is the same as that of an uninterrupted serial run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from rnnzoo_train.records import NetworkResult, SearchTrial, TaskPlan
from rnnzoo_train.tasks.base import Task


@runtime_checkable
class ZooWriter(Protocol):
    """Where the trainer sends its results (see the module docstring for the contract)."""

    def prepare_task(self, plan: TaskPlan, task: Task) -> None: ...

    def completed(self, task: str) -> set[str]: ...

    def search(self, task: str) -> list[SearchTrial]: ...

    def write_search(self, task: str, trials: Sequence[SearchTrial]) -> None: ...

    def write_results(self, task: str, results: Sequence[NetworkResult]) -> None: ...

    def close(self) -> None: ...


class MemoryZooWriter:
    """A :class:`ZooWriter` that keeps everything in dictionaries (tests, notebooks)."""

    def __init__(self) -> None:
        self.plans: dict[str, TaskPlan] = {}
        self.results: dict[str, dict[str, NetworkResult]] = {}
        self.trials: dict[str, list[SearchTrial]] = {}
        self.closed = False

    def prepare_task(self, plan: TaskPlan, task: Task) -> None:
        old = self.plans.get(plan.task)
        if old is not None and old != plan:
            raise ValueError(
                f"task {plan.task!r} was prepared with a different plan; "
                "use a new output location or the original preset"
            )
        self.plans[plan.task] = plan
        self.results.setdefault(plan.task, {})
        self.trials.setdefault(plan.task, [])

    def completed(self, task: str) -> set[str]:
        finished = ("ok", "diverged")
        return {i for i, r in self.results.get(task, {}).items() if r.status in finished}

    def search(self, task: str) -> list[SearchTrial]:
        return list(self.trials.get(task, []))

    def write_search(self, task: str, trials: Sequence[SearchTrial]) -> None:
        keep = [
            t
            for t in self.trials.setdefault(task, [])
            if (t.config, t.trial) not in {(n.config, n.trial) for n in trials}
        ]
        self.trials[task] = keep + list(trials)

    def write_results(self, task: str, results: Sequence[NetworkResult]) -> None:
        if task not in self.plans:
            raise RuntimeError(f"prepare_task() was not called for task {task!r}")
        for r in results:
            self.results[task][r.network_id] = r

    def close(self) -> None:
        self.closed = True
