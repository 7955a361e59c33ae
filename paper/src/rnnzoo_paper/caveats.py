"""Why a finding may differ from the paper on this zoo: the zoo's size against the paper's.

For every finding whose verdict is *differs*, :func:`explain` writes one line of plausible
reasons with numbers computed from the zoo (its plan: units, seeds, iterations, trial
length) next to the paper's (``rnnzoo_train.presets.get_preset("paper")``), plus facts of
the finding's own analysis (where the deviating networks or frequencies are). Nothing is
typed in; nothing here changes a verdict.
"""

from __future__ import annotations

from math import comb

import numpy as np

from .data import as_str, dynamics


def _task_of(key: str) -> str | None:
    parts = key.split("/")
    if parts[0] in ("cluster", "fixed-points", "losses", "agreement") and len(parts) > 1:
        return parts[1]
    if parts[0] in ("sine", "cdi", "flipflop"):
        return parts[0]
    if parts[0] == "fig4":
        return "cdi"
    return None


def _paper_plan(task: str):
    from rnnzoo_train.presets import get_preset

    try:
        return get_preset("paper").plan(task)
    except Exception:  # an unknown task: no paper reference to compare with
        return None


def _steps(plan) -> int | None:
    try:
        return int(plan.task_config["params"]["n_steps"])
    except (KeyError, TypeError, ValueError):
        return None


def size_facts(zoo, task: str) -> str:
    """The zoo's size on ``task`` against the paper preset's, in one phrase."""
    df = zoo.index(task)
    cells = df.groupby([df["arch"].astype(str), df["activation"].astype(str)]).size()
    units = sorted({int(u) for u in df["units"]})
    parts = [
        f"{len(df)} networks, "
        + (f"{cells.min()}" if cells.min() == cells.max() else f"{cells.min()}-{cells.max()}")
        + " per cell type",
        f"{', '.join(map(str, units))} units",
    ]
    paper = _paper_plan(task)
    try:
        plan = zoo.plan(task)
    except (KeyError, ValueError):
        plan = None
    if plan is not None:
        parts.append(f"{plan.iterations:,} SGD iterations")
        t = _steps(plan)
        if t is not None:
            parts.append(f"T = {t} steps")
        schedule = getattr(plan, "schedule", ())  # a curriculum over T (rnnzoo-train)
        if schedule:
            stages = " -> ".join(f"T = {n} x {k:,}" for n, k in schedule)
            parts.append(f"reached through a trial-length schedule ({stages} iterations)")
    text = "this zoo: " + ", ".join(parts)
    if paper is not None:
        paper_units = sorted({c.units for c in paper.configurations})
        ref = [
            f"{len(paper.seeds)} seeds per configuration",
            f"{', '.join(map(str, paper_units))} units",
            f"{paper.iterations:,} iterations",
        ]
        t = _steps(paper)
        if t is not None:
            ref.append(f"T = {t}")
        text += f" (paper: {', '.join(ref)})"
    return text


def _sine_facts(zoo, key: str) -> str:
    freq = dynamics(zoo, "sine", "sine_frequency")
    if freq is None:
        return ""
    omega = np.asarray(freq["omega"].values, dtype=float)
    try:
        t = _steps(zoo.plan("sine"))
    except (KeyError, ValueError):
        t = None
    cycles = f" ({omega.min() * t:.1f}-{omega.max() * t:.1f} cycles per trial)" if t else ""
    paper = _paper_plan("sine")
    paper_t = _steps(paper) if paper is not None else None
    short = t is not None and paper_t is not None and t < paper_t
    if key == "sine/frequency-alignment" or key == "sine/frequency-by-arch":
        f = np.asarray(freq["frequency_linear"].values, dtype=float)
        rel = np.abs(f - omega[None]) / omega[None]
        med = np.nanmedian(np.where(np.isfinite(rel), rel, np.nan), axis=0)
        why = (
            f": a trial shorter than the paper's (T = {paper_t}) may be fit without a "
            "sustained oscillation at the commanded frequency"
            if short
            else ""
        )
        return (
            f"median relative error per frequency {med[0]:.0%} at ω = {omega[0]:.3f} to "
            f"{med[-1]:.0%} at ω = {omega[-1]:.3f}{cycles}{why}"
        )
    n = np.asarray(freq["n_points"].values)
    bad = n != 1
    if not bad.any():
        return ""
    act = as_str(freq["activation"].values)
    relu = int(bad[act == "relu"].sum())
    per_freq = bad.sum(axis=0)
    worst = int(np.argmax(per_freq))
    nets = int(bad.any(axis=1).sum())
    return (
        f"{int(bad.sum())} (network, frequency) pairs in {nets} networks have another number "
        f"of fixed points near the orbit, {relu} of them in relu networks; most at "
        f"ω = {omega[worst]:.3f} ({int(per_freq[worst])} pairs){cycles}"
    )


def _cdi_count_facts(zoo) -> str:
    summary = dynamics(zoo, "cdi", "dynamics_summary")
    if summary is None:
        return ""
    cols = [v for v in summary.data_vars if str(v).startswith("n_line_graph_nodes_context")]
    if not cols:
        return ""
    nodes = np.stack([np.asarray(summary[c].values) for c in cols], axis=1)
    bad = (nodes < 2).any(axis=1)
    act = as_str(summary["activation"].values)
    return (
        f"{int(bad.sum())} networks lack a line attractor in a context, "
        f"{int((bad & (act == 'relu')).sum())} of them relu"
    )


def _fig4_facts(finding) -> str:
    n = finding.numbers
    if "n_untrained_relu" not in n or "n_trained_tanh" not in n:
        return ""
    a, b = int(n["n_untrained_relu"]), int(n["n_trained_tanh"])
    # exact permutation test over groups of a and b networks: the smallest p is 1 / C(a+b, a)
    return (
        f"{a} + {b} networks compared: the smallest p an exact permutation test can reach is "
        f"{1 / comb(a + b, a):.3f}"
    )


def explain(finding, zoo) -> str:
    """One line of plausible reasons why ``finding`` differs on this zoo (empty if none)."""
    task = _task_of(finding.key)
    if task is None or task not in zoo.tasks:
        return ""
    parts = [size_facts(zoo, task)]
    if finding.key.startswith(("sine/", "fixed-points/sine/")):
        parts.append(_sine_facts(zoo, finding.key))
    elif finding.key == "fixed-points/cdi/count":
        parts.append(_cdi_count_facts(zoo))
    elif finding.key.startswith("fig4/"):
        parts.append(_fig4_facts(finding))
    return "; ".join(p for p in parts if p)
