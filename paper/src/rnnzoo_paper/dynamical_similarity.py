"""Beyond the paper: what Dynamical Similarity Analysis sees in the zoo (issue 13, section 4).

The paper compares networks by representational geometry (SVCCA, CKA: individual, they
cluster by architecture and activation) and by fixed-point topology (universal, it does
not). Dynamical Similarity Analysis (DSA; Ostrow, Eisen, Kozachkov & Fiete, NeurIPS 2023)
compares the dynamics themselves: the DMD operators of delay-embedded trajectories, up to an
orthogonal change of basis (rnnzoo-metrics' ``dsa`` metric). This module asks the paper's
questions of it, on the same networks and probe inputs:

(a) **does DSA cluster by architecture and activation, like geometry, or not, like
    topology?** Per task and label, the same silhouette label test as the other distances
    (:func:`rnnzoo_paper.stats.label_test`), compared with SVCCA's on the same networks;
(b) **does DSA put trained relu networks closer to trained tanh networks than to untrained
    relu ones** (the opposite of SVCCA in Fig. 4)? On the Fig. 4 populations (Vanilla cdi
    networks, trained and untrained, the same probe inputs).

These are new questions, not the paper's claims, so they are answered in their own words
(:data:`ANSWERS`) rather than *agrees* / *differs*; each answer is decided with the
firmness machinery of :mod:`rnnzoo_paper.firmness` (stratified bootstrap over networks,
firm only when at least 95% of the resamples give it), internally coded as the first answer
(``agrees``) or the second (``differs``).

DSA parameters per task (:func:`zoo_parameters`): rnnzoo-metrics' documented rule for a
zoo (:func:`rnnzoo_metrics.dsa.zoo_parameters`: the delay window covers 10% of the trial;
the rank is the median, over a seeded sample of 20 trained networks, of the smallest rank
holding a fixed share of the delay embedding's energy, capped; :func:`rule_defaults`), with
the delays spaced so that there are at most :data:`MAX_DELAYS` of them (delay interval 1 up
to trials of 100 steps; at the paper's sine T = 500, every 5th step), which keeps the
per-network decomposition small. The Fig. 4 comparison uses the cdi task's parameters.

Matrices and embeddings are stored beside the zoo like the other distances
(``paper-distance-dsa``, ``paper-distance-dsa-trained-untrained``, ``paper-embedding-*``) and
reused while their inputs are unchanged.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import xarray as xr

from . import distances as dist
from . import firmness as firm
from . import resamplers as rs
from . import stats
from .data import as_str, finite_hidden, ok_networks
from .derived import fig4_groups
from .findings import MARGIN, TASK_NAME, Finding, _fmt_p, _label_test

METRIC = "dsa"
KEY = "dsa"
FIG4_KEY = "dsa-trained-untrained"
#: the figure of this section (drawn by :mod:`rnnzoo_paper.figures.dsa`)
FIGURE = "dsa.png"
#: rnnzoo-metrics' rule: the delay window covers this fraction of the trial
WINDOW = 0.1
#: at most this many delays (longer trials space them out: delay interval > 1)
MAX_DELAYS = 11
#: trained networks (seeded sample) on which the rank is chosen
SAMPLE = 20
SAMPLE_SEED = 0
#: how the parameters are chosen, in the cache key: a change of rule recomputes
RULE_VERSION = 1
#: the rank check: the rank holding this share of the delay embedding's energy (a richer
#: operator than the rule's); an answer stands only when the check gives it too
CHECK_VARIANCE = 0.99
CHECK_SUFFIX = "-rank-check"
#: the rank check's Procrustes search: rnnzoo-metrics' ``fast`` one (the five structured
#: starts, the best two carried on after 10 steps: ~30-40x cheaper than the default
#: ``thorough``; up to ~1e-2 rad above dsa-metric's optimum on demo pairs, far below the
#: distances between cell types that the check compares)
CHECK_SEARCH = "fast"
#: the Procrustes search of the section's matrices unless asked otherwise (rnnzoo-metrics'
#: default, ``thorough``); ``rnnzoo-paper demo --dsa-search fast`` for paper-sized zoos
DEFAULT_SEARCH = "thorough"
#: distances shown beside DSA in the clustering table (geometry and topology)
COMPARED = ("svcca", "cka", "graph", "graph-matched")

LIKE_GEOMETRY = "like geometry"
LIKE_TOPOLOGY = "like topology"
CLOSER_TANH = "closer to trained tanh"
CLOSER_UNTRAINED = "closer to untrained relu"
UNDECIDED = "inconclusive at this zoo size"
#: the answers of each question, by internal verdict code
ANSWERS = {
    "cluster": {stats.AGREES: LIKE_GEOMETRY, stats.DIFFERS: LIKE_TOPOLOGY},
    "trained-untrained": {stats.AGREES: CLOSER_TANH, stats.DIFFERS: CLOSER_UNTRAINED},
}

RULE_CLUSTER = (
    f"*{LIKE_GEOMETRY}*: DSA clusters by the label (silhouette permutation test within the "
    f"other factor, p <= {stats.ALPHA}) and its silhouette excess over chance is not clearly "
    f"below SVCCA's (more than SVCCA's minus {MARGIN}); *{LIKE_TOPOLOGY}*: SVCCA clusters "
    f"(p <= {stats.ALPHA}) and DSA clearly less (p > {stats.ALPHA}, or an excess at least "
    f"{MARGIN} below SVCCA's), the rule the paper's topology claims are decided by; otherwise "
    f"*{UNDECIDED}*"
)
RULE_TRAINED = (
    "for each untrained relu and each trained tanh Vanilla network, its mean DSA distance from "
    f"the trained relu Vanilla networks (cdi probe inputs, as Fig. 4); *{CLOSER_TANH}*: the "
    f"trained tanh mean is smaller, p <= {stats.ALPHA} (exact permutation test on the means); "
    f"*{CLOSER_UNTRAINED}* (as SVCCA in Fig. 4): the untrained relu mean is smaller, "
    f"p <= {stats.ALPHA}; otherwise *{UNDECIDED}*"
)
RULE_RANK = (
    "the question asked again with the rank that holds "
    f"{CHECK_VARIANCE:.0%} of the delay embedding's energy (same rule otherwise, capped "
    f"alike; rnnzoo-metrics' {CHECK_SEARCH!r} Procrustes search); an answer stands only "
    f"when the check gives it too (on this zoo), otherwise *{UNDECIDED}* (the answer "
    "depends on the rank)"
)
RULE_FIRM = (
    f"the answer recomputed on {firm.N_RESAMPLES} stratified bootstrap resamples of "
    "the networks (within each cell type, seeded; silhouettes against the zoo's permutation "
    f"null, as the paper's findings); an answer stands only when at least {firm.FIRM:.0%} of "
    f"the resamples give it, otherwise *{UNDECIDED}*, with the answer it leans to, the "
    "effect's 95% bootstrap interval and the networks per cell type that would decide it"
)


# -- parameters ---------------------------------------------------------------------------
def rule_defaults() -> dict[str, Any]:
    """The defaults of rnnzoo-metrics' rule (``variance``, ``max_rank``), read, not typed."""
    import inspect

    from rnnzoo_metrics.dsa import suggest_parameters

    sig = inspect.signature(suggest_parameters).parameters
    return {k: sig[k].default for k in ("variance", "max_rank") if k in sig}


def zoo_parameters(
    data: Any, steps: int | None = None, variance: float | None = None
) -> dict[str, int]:
    """DSA's ``n_delays``, ``delay_interval`` and ``rank`` for a task of a zoo.

    rnnzoo-metrics' documented rule on a seeded sample of ``SAMPLE`` networks
    (:func:`rnnzoo_metrics.dsa.zoo_parameters`, window ``WINDOW``), with the delay interval
    chosen so that at most ``MAX_DELAYS`` delays span the window:
    ``ceil(WINDOW * T / (MAX_DELAYS - 1))`` for trials of ``T`` steps.

    Parameters
    ----------
    data
        The task's trained networks: a hidden-state tree of the zoo, or a list of
        ``(trials, time, units)`` arrays.
    steps : int, optional
        ``T`` (default: read from ``data``'s ``time`` dimension, or the arrays' shape).
    variance : float, optional
        Share of the energy the rank must hold (default: the rule's own).
    """
    from rnnzoo_metrics.dsa import zoo_parameters as rule

    if steps is None:
        if isinstance(data, xr.DataTree):
            steps = min(n.ds.sizes["time"] for n in data.subtree if "time" in n.ds.sizes)
        else:
            steps = min(int(np.shape(x)[-2]) for x in data)
    interval = max(1, math.ceil(WINDOW * steps / (MAX_DELAYS - 1)))
    extra = {} if variance is None else {"variance": variance}
    return rule(
        data, sample=SAMPLE, seed=SAMPLE_SEED, window=WINDOW, delay_interval=interval, **extra
    )


def search_presets() -> dict[str, Any]:
    """rnnzoo-metrics' Procrustes search as it is defined now (presets, precision stages).

    Part of every DSA cache key: a preset whose definition changes (e.g. more random starts
    in ``thorough``, or another float32 stop), or a change of the number of starts polished
    in float64, of the polish's method or of the operators the search ascends on, recomputes
    the stored matrices instead of reusing the old search's.
    """
    from rnnzoo_metrics.dsa import POLISH, POLISHED, SEARCH_FORM, SEARCHES

    out: dict[str, Any] = {name: list(spec) for name, spec in SEARCHES.items()}
    out["precision"] = {
        "float64_polish": POLISH,
        "polished_in_float64": POLISHED,
        "search_form": SEARCH_FORM,
        "converged_starts_stay": True,
    }
    return out


def stored_name(base: str, search: str = DEFAULT_SEARCH) -> str:
    """Where a matrix (or its embedding) of ``search`` is stored beside the zoo.

    The default search's under ``base`` (``dsa``, ``dsa-trained-untrained``), another one's
    under ``base-search-<name>``: a run with ``--dsa-search fast`` does not overwrite the
    (16 h on 2 cores for 2,880 networks) ``thorough`` matrices, nor they its own.
    """
    return base if search == DEFAULT_SEARCH else f"{base}-search-{search}"


def check_search(search: str) -> str:
    """``search`` if it is one of rnnzoo-metrics' presets, else a one-line InputError."""
    from rnnzoo_metrics import InputError
    from rnnzoo_metrics.dsa import SEARCHES

    if search not in SEARCHES:
        raise InputError(
            f"unknown DSA search {search!r}; choose from {', '.join(SEARCHES)} "
            "(docs/metrics.md, 'dsa')"
        )
    return search


def _parameters_of(d: xr.DataArray) -> dict[str, Any]:
    return json.loads(d.attrs.get("params", "{}")) if isinstance(d.attrs.get("params"), str) else {}


# -- distance matrices --------------------------------------------------------------------
def task_dsa(
    zoo,
    task: str,
    compute: dist.Compute,
    variance: float | None = None,
    search: str = DEFAULT_SEARCH,
) -> xr.DataArray | None:
    """DSA between the trained networks of ``task`` (status ok, finite probe states).

    The parameters (:func:`zoo_parameters` on a seeded sample of the networks; ``variance``:
    the rank's share of the energy, default the rule's) are in the matrix's
    ``attrs["params"]`` (JSON, as rnnzoo-metrics writes it). Stored as
    ``paper-distance-dsa`` (``paper-distance-dsa-rank-check`` with ``variance``;
    :func:`stored_name` for another ``search``) and reused while the networks are the same.
    ``search``: rnnzoo-metrics' Procrustes search preset (the rank check always uses
    :data:`CHECK_SEARCH`).
    """
    from rnnzoo_metrics import get_metric

    check_search(search)
    ids = finite_hidden(zoo, task, ok_networks(zoo, task))
    if len(ids) < 3:
        return None
    if variance is not None:
        search = CHECK_SEARCH
    # the metric's defaults with this search: the default search's key is the one it always had
    defaults = {**get_metric(METRIC).params, "search": search}
    key = dist._key(
        METRIC,
        defaults,
        search_presets(),
        rule_defaults(),
        RULE_VERSION,
        WINDOW,
        MAX_DELAYS,
        SAMPLE,
        ids,
        variance,
    )

    def run() -> xr.DataArray:
        tree = zoo.hidden_states(task, ids, which="trained")
        params = zoo_parameters(tree, variance=variance)
        return compute.pairwise(tree, METRIC, search=search, **params)

    name = KEY + CHECK_SUFFIX if variance is not None else stored_name(KEY, search)
    return dist._cached(zoo, task, name, key, run)


def trained_untrained_dsa(
    zoo, params: Mapping[str, Any], compute: dist.Compute, name: str | None = None
) -> xr.DataArray | None:
    """DSA among the trained and untrained Vanilla cdi networks (Fig. 4's populations).

    Mirrors :func:`rnnzoo_paper.distances.trained_untrained_distance` (same networks, ids of
    untrained networks suffixed ``-untrained``, coordinate ``trained``) with DSA and the cdi
    task's parameters ``params`` (with ``search``, default :data:`DEFAULT_SEARCH`). Stored as
    ``name`` (default :func:`stored_name` of :data:`FIG4_KEY` and the search).
    """
    task = dist.FIG4_TASK
    if task not in zoo.tasks:
        return None
    index = zoo.index(task)
    ids = [i for i in ok_networks(zoo, task) if str(index.loc[i, "arch"]) == dist.FIG4_ARCH]
    trained = finite_hidden(zoo, task, ids, "trained")
    untrained = finite_hidden(zoo, task, ids, "untrained")
    if len(trained) + len(untrained) < 3:
        return None
    params = {k: params[k] for k in ("n_delays", "delay_interval", "rank", "search") if k in params}
    if name is None:
        name = stored_name(FIG4_KEY, check_search(params.get("search", DEFAULT_SEARCH)))
    key = dist._key(METRIC, params, search_presets(), trained, untrained, "fig4-dsa")

    def run() -> xr.DataArray:
        tree = dist.trained_untrained_tree(zoo, task, trained, untrained)
        return compute.pairwise(tree, METRIC, variable="hidden", **params)

    return dist._cached(zoo, task, name, key, run)


# -- questions ------------------------------------------------------------------------------
@dataclass
class Question(Finding):
    """A beyond-the-paper finding, answered in its own words.

    A :class:`~rnnzoo_paper.findings.Finding` whose verdict codes (``agrees`` / ``differs``)
    stand for the two answers of its question (``answers``), so that the firmness machinery
    decides it unchanged.
    """

    answers: dict[str, str] = field(default_factory=dict)
    rank_check: dict[str, Any] = field(default_factory=dict)

    @property
    def answer(self) -> str:
        """The verdict in the question's own words (``like geometry``, ...)."""
        return self.answers.get(self.verdict, UNDECIDED)

    @property
    def point_answer(self) -> str:
        """The answer on the zoo itself, before its firmness is known."""
        return self.answers.get(self.point_verdict or self.verdict, UNDECIDED)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(replace(self, resampler=None)).items() if k != "resampler"}
        out["answer"] = self.answer
        out["point_answer"] = self.point_answer
        return out


def cluster_answer(
    p_dsa: float, excess_dsa: float, p_svcca: float, excess_svcca: float, margin: float = MARGIN
) -> str:
    """Rule (a) (:data:`RULE_CLUSTER`) as a verdict code: ``agrees`` = like geometry."""
    if math.isfinite(p_dsa) and p_dsa <= stats.ALPHA and excess_dsa > excess_svcca - margin:
        return stats.AGREES
    if (
        math.isfinite(p_svcca)
        and p_svcca <= stats.ALPHA
        and (not p_dsa <= stats.ALPHA or excess_dsa <= excess_svcca - margin)
    ):
        return stats.DIFFERS
    return stats.INCONCLUSIVE


def trained_answer(mean_untrained: float, mean_tanh: float, p_tanh: float, p_untrained: float):
    """Rule (b) (:data:`RULE_TRAINED`) as a verdict code: ``agrees`` = closer to trained tanh.

    ``p_tanh``: one-sided p that the trained tanh mean is the smaller; ``p_untrained``: that
    the untrained relu mean is.
    """
    if math.isfinite(p_tanh) and p_tanh <= stats.ALPHA and mean_tanh < mean_untrained:
        return stats.AGREES
    if math.isfinite(p_untrained) and p_untrained <= stats.ALPHA and mean_untrained < mean_tanh:
        return stats.DIFFERS
    return stats.INCONCLUSIVE


def _excess(t: stats.LabelTest | None) -> float:
    return math.nan if t is None else t.silhouette - t.null_mean


def _cluster_resampler(data: rs.ClusterData, by: str, effect: float) -> firm.Resampler:
    """Rule (a) per resample; effect: SVCCA's silhouette excess minus DSA's."""

    def run(idx):
        t = data.test(KEY, by, idx)
        ref = data.test("svcca", by, idx)
        e_t = t["silhouette"] - t["null_mean"]
        e_r = ref["silhouette"] - ref["null_mean"]
        verdicts = [
            cluster_answer(t["p_value"][i], e_t[i], ref["p_value"][i], e_r[i])
            if t["testable"][i] and ref["testable"][i]
            else stats.INCONCLUSIVE
            for i in range(len(idx))
        ]
        return np.array(verdicts, dtype=object), e_r - e_t

    def needed(n_cell, effects):
        return firm.networks_needed(n_cell, effect, effects, firm.THRESHOLD, MARGIN)

    return firm.Resampler(
        data.cells,
        run,
        effect,
        "SVCCA's silhouette excess minus DSA's",
        firm.THRESHOLD,
        MARGIN,
        seed_key=f"cluster/{data.task}",
        needed=needed,
    )


def cluster_questions(
    dsa: Mapping[str, xr.DataArray],
    distances: Mapping[str, Mapping[str, xr.DataArray]],
) -> tuple[list[Question], dict[str, dict[tuple[str, str], tuple[float, float]]]]:
    """Question (a) for every task with a DSA matrix and an SVCCA matrix.

    Returns the questions and, per task, ``{(distance, label): (excess over chance, p)}`` of
    DSA and the compared distances (:data:`COMPARED`), for the table and the figure.
    """
    out: list[Question] = []
    tables: dict[str, dict[tuple[str, str], tuple[float, float]]] = {}
    for task, d in dsa.items():
        mats = {k: v for k, v in distances.get(task, {}).items() if k in COMPARED}
        table: dict[tuple[str, str], tuple[float, float]] = {}
        tables[task] = table
        cdata = rs.ClusterData(
            task, {**({"svcca": mats["svcca"]} if "svcca" in mats else {}), KEY: d}
        )
        for by, other in (("arch", "activation"), ("activation", "arch")):
            tests: dict[str, stats.LabelTest | None] = {}
            for k, m in (*mats.items(), (KEY, d)):
                t, _ = _label_test(m, by, other)
                tests[k] = t
                if t is not None:
                    table[(k, by)] = (_excess(t), t.p_value)
            word = "architecture" if by == "arch" else "activation"
            qkey = f"dsa/{task}/cluster/{by}"
            question = (
                f"{TASK_NAME.get(task, task)}: does DSA cluster by {word} like geometry "
                "(SVCCA, CKA) or not, like fixed-point topology?"
            )
            t, ref = tests.get(KEY), tests.get("svcca")
            if t is None or ref is None:
                _, why = _label_test(d if t is None else mats.get("svcca", d), by, other)
                why = why or "no SVCCA matrix to compare with"
                out.append(
                    Question(
                        qkey,
                        "beyond the paper",
                        question,
                        f"not computable: {why}",
                        stats.INCONCLUSIVE,
                        RULE_CLUSTER,
                        answers=ANSWERS["cluster"],
                    )
                )
                continue
            cdata.register(KEY, by, t)
            cdata.register("svcca", by, ref)
            e, e_ref = _excess(t), _excess(ref)
            others = "; ".join(
                f"{dist.DISTANCES[k].title} {table[(k, by)][0]:+.3f} ({_fmt_p(table[(k, by)][1])})"
                for k in COMPARED
                if (k, by) in table and k != "svcca"
            )
            result = (
                f"silhouette excess over chance by {word}: DSA {e:+.3f} ({_fmt_p(t.p_value)}), "
                f"SVCCA {e_ref:+.3f} ({_fmt_p(ref.p_value)})"
                + (f"; {others}" if others else "")
                + f" ({t.n} networks, smallest group {t.min_group})"
            )
            numbers = {
                "silhouette": t.silhouette,
                "chance_silhouette": t.null_mean,
                "p_value": t.p_value,
                "svcca_silhouette": ref.silhouette,
                "svcca_chance_silhouette": ref.null_mean,
                "svcca_p_value": ref.p_value,
                "n_networks": float(t.n),
                "min_group": float(t.min_group),
            }
            for (k, b), (ex, p) in table.items():
                if b == by and k not in (KEY, "svcca") and math.isfinite(ex):
                    numbers[f"{k}_excess"] = ex
                    numbers[f"{k}_p_value"] = p
            out.append(
                Question(
                    qkey,
                    "beyond the paper",
                    question,
                    result,
                    cluster_answer(t.p_value, e, ref.p_value, e_ref),
                    RULE_CLUSTER,
                    numbers,
                    resampler=_cluster_resampler(cdata, by, e_ref - e),
                    answers=ANSWERS["cluster"],
                )
            )
    return out, tables


def _trained_resampler(d: xr.DataArray) -> firm.Resampler:
    """Rule (b) per resample of the trained relu (reference), untrained relu, trained tanh.

    As :func:`rnnzoo_paper.resamplers.fig4_resampler`; effect: mean distance to untrained relu
    minus to trained tanh (positive: closer to trained tanh).
    """
    from .resample import TwoGroupTest

    act = as_str(d["activation"].values)
    tr = as_str(d["trained"].values)
    a = np.asarray(d.values, dtype=float)
    ref = (act == "relu") & (tr == "trained")
    u = (act == "relu") & (tr == "untrained")
    t = (act == "tanh") & (tr == "trained")
    pos = np.flatnonzero(ref | u | t)
    sub = a[np.ix_(pos, pos)]
    kind = np.where(ref[pos], "ref", np.where(u[pos], "u", "t"))
    test = TwoGroupTest()

    def means(row):
        r = row[kind[row] == "ref"]
        return {g: sub[np.ix_(r, row[kind[row] == g])].mean(axis=0) for g in ("u", "t")}

    def one(row):
        m = means(row)
        mu, mt = m["u"], m["t"]
        verdict = trained_answer(mu.mean(), mt.mean(), test.p(mt, mu), test.p(mu, mt))
        return verdict, float(mu.mean() - mt.mean())

    m0 = means(np.arange(len(pos)))
    return firm.Resampler(
        np.array([f"vanilla-{k}" for k in kind], dtype=object),
        lambda idx: rs._per_resample(idx, one),
        float(m0["u"].mean() - m0["t"].mean()),
        "DSA distance to untrained relu minus to trained tanh",
    )


def trained_question(d: xr.DataArray | None, svcca: xr.DataArray | None) -> Question:
    """Question (b) on the DSA matrix of Fig. 4's populations (``svcca``: Fig. 4's own)."""
    qkey = "dsa/cdi/trained-untrained"
    question = (
        "does DSA put trained relu Vanilla networks closer to trained tanh networks than to "
        "untrained relu ones (the opposite of SVCCA in Fig. 4, cdi inputs)?"
    )

    def missing(why: str) -> Question:
        return Question(
            qkey,
            "beyond the paper",
            question,
            f"not computable: {why}",
            stats.INCONCLUSIVE,
            RULE_TRAINED,
            answers=ANSWERS["trained-untrained"],
        )

    if d is None:
        return missing("no Vanilla cdi networks (or the zoo has no cdi task)")
    g = fig4_groups(d)
    if "untrained relu" not in g or "trained tanh" not in g:
        return missing(
            "needs trained and untrained relu and trained tanh Vanilla networks with finite states"
        )
    u, t = g["untrained relu"], g["trained tanh"]
    p_tanh = stats.exact_two_group_test(t, u)
    p_untrained = stats.exact_two_group_test(u, t)
    numbers = {
        "dsa_trained_relu_untrained_relu": float(np.mean(u)),
        "dsa_trained_relu_trained_tanh": float(np.mean(t)),
        "p_value_closer_to_trained_tanh": p_tanh,
        "p_value_closer_to_untrained_relu": p_untrained,
        "n_untrained_relu": float(len(u)),
        "n_trained_tanh": float(len(t)),
    }
    if "untrained tanh" in g:
        numbers["dsa_trained_relu_untrained_tanh"] = float(np.mean(g["untrained tanh"]))
    result = (
        f"mean DSA distance from trained relu: to untrained relu {np.mean(u):.3f}, to trained "
        f"tanh {np.mean(t):.3f}; closer to trained tanh {_fmt_p(p_tanh)}, closer to untrained "
        f"relu {_fmt_p(p_untrained)} (exact permutation tests over the {len(u)} + {len(t)} "
        "networks compared)"
    )
    sg = fig4_groups(svcca) if svcca is not None else {}
    if "untrained relu" in sg and "trained tanh" in sg:
        su, st = float(np.mean(sg["untrained relu"])), float(np.mean(sg["trained tanh"]))
        numbers["svcca_trained_relu_untrained_relu"] = su
        numbers["svcca_trained_relu_trained_tanh"] = st
        if "untrained tanh" in sg:
            numbers["svcca_trained_relu_untrained_tanh"] = float(np.mean(sg["untrained tanh"]))
        result += f"; SVCCA on the same networks: {su:.3f} and {st:.3f}"
    return Question(
        qkey,
        "beyond the paper",
        question,
        result,
        trained_answer(float(np.mean(u)), float(np.mean(t)), p_tanh, p_untrained),
        RULE_TRAINED,
        numbers,
        resampler=_trained_resampler(d),
        answers=ANSWERS["trained-untrained"],
    )


def apply_rank_check(
    questions: Sequence[Question], checks: Sequence[Question], ranks: Mapping[str, int]
) -> None:
    """Keep each answer only when the rank check (:data:`RULE_RANK`) gives it too.

    ``checks``: the same questions asked with the richer operators (their answers on the
    zoo itself, no firmness); ``ranks``: the check's rank per task. Each question gets
    ``rank_check`` (``rank``, ``answer``, ``verdict``, ``agrees``); a decided answer the check
    does not repeat becomes *inconclusive at this zoo size*, and its result says why.
    """
    by_key = {c.key: c for c in checks}
    for q in questions:
        c = by_key.get(q.key)
        task = q.key.split("/")[1]
        if c is None or task not in ranks:
            continue
        same = c.verdict == q.verdict
        q.rank_check = {
            "rank": int(ranks[task]),
            "verdict": c.verdict,
            "answer": c.answer,
            "agrees": bool(same),
        }
        if not q.numbers:
            continue
        q.result += f"; at rank {ranks[task]} ({CHECK_VARIANCE:.0%} of the energy): {c.answer}"
        if c.numbers.get("p_value") is not None and "cluster" in q.key:
            q.numbers["rank_check_excess"] = (
                c.numbers["silhouette"] - c.numbers["chance_silhouette"]
            )
            q.numbers["rank_check_p_value"] = c.numbers["p_value"]
        for name in ("dsa_trained_relu_untrained_relu", "dsa_trained_relu_trained_tanh"):
            if name in c.numbers:
                q.numbers[f"rank_check_{name}"] = c.numbers[name]
        q.numbers["rank_check_rank"] = float(ranks[task])
        if q.verdict in (stats.AGREES, stats.DIFFERS) and not same:
            q.verdict = stats.INCONCLUSIVE


# -- the pipeline step ----------------------------------------------------------------------
@dataclass
class DSAResult:
    """What the dynamical-similarity step produced (read by the figure and the report).

    Attributes
    ----------
    matrices, embeddings : dict
        Per task: the DSA matrix of the trained networks and its 2-D MDS.
    params : dict
        Per task: ``n_delays``, ``delay_interval``, ``rank`` used.
    search : str
        rnnzoo-metrics' Procrustes search of the matrices (the rank check's is
        :data:`CHECK_SEARCH`).
    check_params : dict
        Per task: the parameters of the rank check (:data:`RULE_RANK`).
    trained_untrained, trained_untrained_embedding : DataArray or None
        DSA among Fig. 4's trained and untrained Vanilla cdi networks, and its MDS.
    svcca_trained_untrained : DataArray or None
        Fig. 4's SVCCA matrix, for the comparison.
    questions : list of Question
    excess : dict
        Per task ``{(distance, label): (silhouette excess over chance, p)}``.
    check_excess, check_trained_untrained
        The same for the rank check (DSA and SVCCA only), and its Fig. 4 matrix.
    seconds, cpu_seconds : dict
        Per task (and ``"trained-untrained"``, ``"questions"``): wall and CPU seconds (CPU of
        this process and of the process pool it ended; not of Dask workers, which live on).
    errors : dict
        Per task: why DSA could not be computed (a one-line message).
    """

    matrices: dict[str, xr.DataArray] = field(default_factory=dict)
    embeddings: dict[str, xr.DataArray] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    search: str = DEFAULT_SEARCH
    check_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    trained_untrained: xr.DataArray | None = None
    trained_untrained_embedding: xr.DataArray | None = None
    svcca_trained_untrained: xr.DataArray | None = None
    questions: list[Question] = field(default_factory=list)
    excess: dict[str, dict[tuple[str, str], tuple[float, float]]] = field(default_factory=dict)
    check_excess: dict[str, dict[tuple[str, str], tuple[float, float]]] = field(
        default_factory=dict
    )
    check_trained_untrained: xr.DataArray | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def total(self) -> tuple[float, float]:
        """Wall and CPU seconds of the whole step."""
        return sum(self.seconds.values()), sum(self.cpu_seconds.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: parameters, times, errors and every question with its numbers."""
        return {
            "params": self.params,
            "search": self.search,
            "rank_check_params": self.check_params,
            "rank_check_search": CHECK_SEARCH,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "errors": self.errors,
            "questions": [q.to_dict() for q in self.questions],
        }


class _Clock:
    def __init__(self, result: DSAResult, name: str):
        self.result, self.name = result, name

    @staticmethod
    def _cpu() -> float:
        """CPU seconds of this process and of its ended children (a process pool's)."""
        import resource

        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + kids.ru_utime + kids.ru_stime

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), self._cpu()

    def __exit__(self, *exc):
        self.result.seconds[self.name] = time.perf_counter() - self.wall
        self.result.cpu_seconds[self.name] = self._cpu() - self.cpu


def compute_dsa(
    zoo,
    tasks: Sequence[str],
    compute: dist.Compute,
    distances: Mapping[str, Mapping[str, xr.DataArray]] | None = None,
    fig4_svcca: xr.DataArray | None = None,
    firmness: bool = True,
    rank_check: bool = True,
    search: str = DEFAULT_SEARCH,
) -> DSAResult:
    """DSA matrices, embeddings and both questions, each answered with its firmness.

    Parameters
    ----------
    zoo : rnnzoo_train.zoo.Zoo
    tasks : sequence of str
    compute : rnnzoo_paper.distances.Compute
        Where the pairwise tiles run.
    distances : dict, optional
        The pipeline's other distance matrices per task (SVCCA is the reference of (a)).
    fig4_svcca : DataArray, optional
        Fig. 4's SVCCA matrix (shown beside (b)).
    firmness : bool
        Decide each answer with its firmness (False: the zoo's own answers).
    rank_check : bool
        Ask every question again at the rank holding ``CHECK_VARIANCE`` of the energy and
        keep only the answers it repeats (:func:`apply_rank_check`).
    search : {"thorough", "fast"}
        rnnzoo-metrics' Procrustes search (``docs/metrics.md``): ``thorough`` (default) is
        never worse than ``dsa-metric``'s optimum on every pair compared; ``fast`` is ~10-20x
        cheaper (all pairs of 2,880 networks in an hour on 2 cores) and ends in a worse
        local optimum in a share of pairs. Each search's matrices are stored apart
        (:func:`stored_name`).
    """
    from rnnzoo_metrics import InputError

    check_search(search)
    res = DSAResult(svcca_trained_untrained=fig4_svcca, search=search)
    for task in tasks:
        with _Clock(res, task):
            try:
                d = task_dsa(zoo, task, compute, search=search)
            except InputError as err:  # e.g. trials too short for any delay embedding
                res.errors[task] = str(err)
                continue
            if d is None:
                res.errors[task] = "fewer than 3 trained networks with finite probe states"
                continue
            res.matrices[task] = d
            res.params[task] = {
                k: v
                for k, v in _parameters_of(d).items()
                if k in ("n_delays", "delay_interval", "rank")
            }
            emb = dist.embedding(zoo, task, stored_name(KEY, search), d)
            if emb is not None:
                res.embeddings[task] = emb
    if dist.FIG4_TASK in res.matrices:
        with _Clock(res, "trained-untrained"):
            try:
                res.trained_untrained = trained_untrained_dsa(
                    zoo, {**res.params[dist.FIG4_TASK], "search": search}, compute
                )
            except InputError as err:
                res.errors["trained-untrained"] = str(err)
            res.trained_untrained_embedding = dist.embedding(
                zoo, dist.FIG4_TASK, stored_name(FIG4_KEY, search), res.trained_untrained
            )
    with _Clock(res, "questions"):
        res.questions, res.excess = cluster_questions(res.matrices, distances or {})
        if dist.FIG4_TASK in tasks:
            res.questions.append(trained_question(res.trained_untrained, fig4_svcca))
        if firmness:
            firm.apply_firmness(res.questions)
    if rank_check:
        _rank_check(zoo, tasks, compute, res, distances or {})
    return res


def _rank_check(zoo, tasks, compute, res: DSAResult, distances) -> None:
    """The questions again with the richer operators (rank holding CHECK_VARIANCE)."""
    from rnnzoo_metrics import InputError

    mats: dict[str, xr.DataArray] = {}
    for task in res.matrices:
        name = f"{task}{CHECK_SUFFIX}"
        with _Clock(res, name):
            try:
                d = task_dsa(zoo, task, compute, CHECK_VARIANCE)
            except InputError as err:
                res.errors[name] = str(err)
                continue
            if d is not None:
                mats[task] = d
                res.check_params[task] = {
                    k: v
                    for k, v in _parameters_of(d).items()
                    if k in ("n_delays", "delay_interval", "rank")
                }
    tu = None
    if dist.FIG4_TASK in mats:
        name = f"trained-untrained{CHECK_SUFFIX}"
        with _Clock(res, name):
            try:
                tu = trained_untrained_dsa(
                    zoo,
                    {**res.check_params[dist.FIG4_TASK], "search": CHECK_SEARCH},
                    compute,
                    FIG4_KEY + CHECK_SUFFIX,
                )
            except InputError as err:
                res.errors[name] = str(err)
    with _Clock(res, f"questions{CHECK_SUFFIX}"):
        checks, res.check_excess = cluster_questions(
            mats, {t: {"svcca": m["svcca"]} for t, m in distances.items() if "svcca" in m}
        )
        res.check_trained_untrained = tu
        if dist.FIG4_TASK in tasks:
            checks.append(trained_question(tu, None))
        ranks = {t: p["rank"] for t, p in res.check_params.items() if "rank" in p}
        apply_rank_check(res.questions, checks, ranks)


def step(zoo, tasks: list[str], runner: Any, opt: Any, matrices, fig4) -> tuple[DSAResult, str]:
    """The pipeline's *dynamical similarity* step; writes ``<out>/dynamical_similarity.json``.

    Tiles run on the runner's workers (the Dask runner's, or a process pool of
    ``--processes N``), whatever the population: a DSA pair costs milliseconds, not the
    microseconds of an SVCCA pair, so even the demo's 40 networks a task are worth spreading
    (the engine cuts them into tiles for every worker). Returns the result and a one-line
    summary (with the step's CPU time: the machine may be shared).
    """
    import sys
    from pathlib import Path

    from rnnzoo_train.runners import ProcessRunner

    client = getattr(runner, "client", None) if hasattr(type(runner), "client") else None
    pool = isinstance(runner, ProcessRunner)
    compute = dist.Compute(
        n_jobs=runner.n_workers if client is None and pool else 1,
        client=client,
        progress=opt.progress,
    )
    res = compute_dsa(
        zoo, tasks, compute, matrices, fig4, search=getattr(opt, "dsa_search", DEFAULT_SEARCH)
    )
    for task in tasks:
        p = res.params.get(task)
        what = (
            f"n_delays {p['n_delays']} x {p['delay_interval']}, rank {p['rank']}"
            if p
            else f"not computed: {res.errors.get(task, '?')}"
        )
        print(
            f"  {task}: DSA {what} ({res.seconds.get(task, 0.0):.1f} s, "
            f"CPU {res.cpu_seconds.get(task, 0.0):.1f} s)",
            file=sys.stderr,
            flush=True,
        )
    Path(opt.out, "dynamical_similarity.json").write_text(
        json.dumps(res.to_dict(), indent=1, ensure_ascii=False)
    )
    wall, cpu = res.total()
    n = len(res.matrices) + (res.trained_untrained is not None)
    return res, f"{n} DSA matrices, {len(res.questions)} questions (CPU {cpu:.1f} s)"
