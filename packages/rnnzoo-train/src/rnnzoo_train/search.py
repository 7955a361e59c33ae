"""Random hyper-parameter search per configuration (paper section 2.1).

Each configuration gets ``n_trials`` draws from the paper's ranges
(:data:`rnnzoo_train.presets.SEARCH_RANGES`): gradient-clipping threshold log-uniform on
[0.1, 10], initial learning rate log-uniform on [1e-5, 0.1], decay rate uniform on
[0.1, 0.9], momentum uniform on [0, 1). The draws come from a generator seeded by the task
and the configuration, so a search is reproducible and independent of the others. Trial
``i`` is a network with ``role="trial"``, ``trial=i`` and ``seed=i``, trained for
``search_iterations``. The winner is the trial with the lowest validation loss among those
that did not diverge (ties: the lowest trial index); every trial is recorded, winner flagged.
"""

from __future__ import annotations

import math

import numpy as np

from rnnzoo_train.presets import SEARCH_RANGES
from rnnzoo_train.records import (
    Configuration,
    HyperParameters,
    NetworkResult,
    NetworkSpec,
    SearchTrial,
    TaskPlan,
)
from rnnzoo_train.training.seeding import search_rng


def draw_hparams(rng: np.random.Generator, n: int) -> list[HyperParameters]:
    """``n`` random draws from the paper's search ranges."""
    cols = {}
    for name, (lo, hi, log) in SEARCH_RANGES.items():
        u = rng.uniform(size=n)
        cols[name] = (
            np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo))) if log else lo + u * (hi - lo)
        )
    return [HyperParameters(**{k: float(v[i]) for k, v in cols.items()}) for i in range(n)]


def search_specs(plan: TaskPlan, config: Configuration) -> list[NetworkSpec]:
    """The search trials of one configuration of ``plan``."""
    draws = draw_hparams(search_rng(plan.task, config.key), plan.n_trials)
    return [
        NetworkSpec(
            task=plan.task,
            config=config,
            seed=i,
            hparams=hp,
            iterations=plan.search_iterations,
            batch_size=plan.batch_size,
            role="trial",
            trial=i,
            schedule=plan.schedule,
        )
        for i, hp in enumerate(draws)
    ]


def choose_trial(results: list[NetworkResult]) -> tuple[list[SearchTrial], HyperParameters]:
    """Records of all trials of one configuration, the winner flagged, and its hyper-parameters.

    If every trial diverged, the one with the lowest finite validation loss wins (or trial 0
    if none is finite), so that generation can go on and the record shows what happened.
    """
    if not results:
        raise ValueError("choose_trial needs the results of at least one trial")
    results = sorted(results, key=lambda r: r.spec.trial)

    def rank(r: NetworkResult) -> tuple[int, float, int]:
        finite = math.isfinite(r.val_loss)
        return (0 if r.status == "ok" and finite else 1 if finite else 2,
                r.val_loss if finite else math.inf, r.spec.trial)  # fmt: skip

    best = min(results, key=rank)
    trials = [
        SearchTrial(
            task=r.spec.task,
            config=r.spec.config,
            trial=r.spec.trial,
            seed=r.spec.seed,
            hparams=r.spec.hparams,
            iterations=r.spec.iterations,
            status=r.status,
            val_loss=r.val_loss,
            chosen=r is best,
        )
        for r in results
    ]
    return trials, best.spec.hparams
