"""One :class:`~rnnzoo_paper.firmness.Resampler` per kind of finding.

Each builder takes the per-network quantities (or distance matrices) a finding was computed
from and returns a resampler whose ``run(idx)`` recomputes the finding's statistic and
verdict on every resample, with the same rule (:mod:`rnnzoo_paper.stats`) as the finding
itself. Effects are signed so that positive is the paper's direction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import xarray as xr

from . import stats
from .data import as_str
from .derived import modal
from .firmness import THRESHOLD, Resampler, cells_of, kruskal_needed, networks_needed
from .resample import TwoGroupTest, null_p_values, resampled_silhouettes


def _per_resample(idx: np.ndarray, fn: Callable[[np.ndarray], tuple[str, float]]):
    out = [fn(row) for row in idx]
    return np.array([v for v, _ in out], dtype=object), np.array([e for _, e in out], float)


def fraction_resampler(
    cells: np.ndarray, met: np.ndarray, threshold: float, name: str, n_total: int | None = None
) -> Resampler:
    """A threshold claim on the fraction of networks with ``met`` (e.g. solved the task).

    ``met`` may be a per-network fraction (e.g. of frequencies with one fixed point), whose
    mean over networks is the claim's fraction of pairs.
    """
    met = np.asarray(met, dtype=float)
    n = len(met) if n_total is None else n_total

    def run(idx):
        frac = met[idx].mean(axis=1)
        verdicts = np.array([stats.threshold_verdict(f >= threshold, n) for f in frac], object)
        return verdicts, frac

    return Resampler(cells, run, float(met.mean()), name, THRESHOLD, threshold)


def modal_resampler(cells: np.ndarray, values: np.ndarray, threshold: float) -> Resampler:
    """Threshold claim "the vast majority share one value": fraction at the modal value."""
    values = np.asarray(values).astype(int)
    n = len(values)

    def one(row):
        _, frac = modal(values[row])
        return stats.threshold_verdict(frac >= threshold, n), frac

    return Resampler(
        cells,
        lambda idx: _per_resample(idx, one),
        modal(values)[1],
        "fraction of networks at the modal count",
        THRESHOLD,
        threshold,
    )


def mode_is_resampler(cells: np.ndarray, values: np.ndarray, target: int) -> Resampler:
    """Threshold claim "the modal value is ``target``".

    Effect: the fraction at ``target`` minus the largest fraction at another value.
    """
    values = np.asarray(values).astype(int)
    n = len(values)

    def margin(v):
        uniq, counts = np.unique(v, return_counts=True)
        frac = counts / len(v)
        at = float(frac[uniq == target].sum())
        other = float(frac[uniq != target].max()) if (uniq != target).any() else 0.0
        return at - other

    def one(row):
        v = values[row]
        return stats.threshold_verdict(modal(v)[0] == target, n), margin(v)

    return Resampler(
        cells,
        lambda idx: _per_resample(idx, one),
        margin(values),
        f"fraction with {target} minus the next most common count",
        THRESHOLD,
        0.0,
    )


def line_attractor_resampler(cells: np.ndarray, nodes: np.ndarray, threshold: float) -> Resampler:
    """cdi: fraction of networks with a line attractor of the modal node count everywhere."""
    nodes = np.asarray(nodes).astype(int)
    n = len(nodes)

    def frac_of(v):
        lines = v[v >= 2]
        mode = modal(lines)[0] if lines.size else 0
        return float((v == mode).all(axis=1).mean()) if mode else 0.0

    def one(row):
        f = frac_of(nodes[row])
        return stats.threshold_verdict(f >= threshold, n), f

    return Resampler(
        cells,
        lambda idx: _per_resample(idx, one),
        frac_of(nodes),
        "fraction with a line attractor of the modal size in every context",
        THRESHOLD,
        threshold,
    )


def median_below_resampler(cells: np.ndarray, values: np.ndarray, threshold: float, name: str):
    """A threshold claim "median <= threshold" (NaN networks left out, as in the finding)."""
    values = np.asarray(values, dtype=float)

    def one(row):
        v = values[row]
        v = v[np.isfinite(v)]
        if len(v) == 0:
            return stats.INCONCLUSIVE, math.nan
        med = float(np.median(v))
        return stats.threshold_verdict(med <= threshold, len(v)), threshold - med

    fin = values[np.isfinite(values)]
    return Resampler(
        cells,
        lambda idx: _per_resample(idx, one),
        threshold - float(np.median(fin)) if len(fin) else math.nan,
        f"{threshold:g} minus the {name}",
        THRESHOLD,
        0.0,
    )


def two_group_resampler(
    cells: np.ndarray,
    values: np.ndarray,
    in_a: np.ndarray,
    direction: Callable[[np.ndarray, np.ndarray], bool],
    name: str,
) -> Resampler:
    """Test "group a has smaller values than group b": permutation test on means, both tails.

    Effect: mean(b) - mean(a). ``direction(a, b)`` is the finding's own direction check.
    """
    values = np.asarray(values, dtype=float)
    in_a = np.asarray(in_a, dtype=bool)
    test = TwoGroupTest()

    def one(row):
        v, ia = values[row], in_a[row]
        a, b = v[ia & np.isfinite(v)], v[~ia & np.isfinite(v)]
        if len(a) == 0 or len(b) == 0:
            return stats.INCONCLUSIVE, math.nan
        p, p_opp = test.p(a, b), test.p(b, a)
        verdict = stats.verdict(direction(a, b), p, min(len(a), len(b)), p_opp)
        return verdict, float(b.mean() - a.mean())

    a0 = values[in_a & np.isfinite(values)]
    b0 = values[~in_a & np.isfinite(values)]
    effect = float(b0.mean() - a0.mean()) if len(a0) and len(b0) else math.nan
    return Resampler(cells, lambda idx: _per_resample(idx, one), effect, name)


def kruskal_resampler(cells: np.ndarray, values: np.ndarray, groups: np.ndarray) -> Resampler:
    """Kruskal-Wallis across ``groups``; effect: epsilon^2 = H / (n - 1) (rank effect size)."""
    from scipy.stats import kruskal

    values = np.asarray(values, dtype=float)
    groups = np.asarray(groups, dtype=object)
    names = list(dict.fromkeys(groups.tolist()))

    def h_p(v, g):
        parts = [v[(g == a) & np.isfinite(v)] for a in names]
        parts = [x for x in parts if len(x) >= 2]
        if len(parts) < 2:
            return math.nan, math.nan, 0, 0
        pooled = np.concatenate(parts)
        if np.ptp(pooled) == 0:
            return 0.0, 1.0, min(len(x) for x in parts), len(pooled)
        h, p = kruskal(*parts)
        return float(h), float(p), min(len(x) for x in parts), len(pooled)

    def one(row):
        h, p, m, n = h_p(values[row], groups[row])
        if not math.isfinite(p):
            return stats.INCONCLUSIVE, math.nan
        return stats.verdict(True, p, m), h / max(n - 1, 1)

    h0, _, _, n0 = h_p(values, groups)
    df = len(names) - 1

    def needed(n_cell, effects):
        return kruskal_needed(h0, df, n_cell)

    return Resampler(
        cells,
        lambda idx: _per_resample(idx, one),
        h0 / max(n0 - 1, 1) if math.isfinite(h0) else math.nan,
        "epsilon^2 = H / (n - 1)",
        needed=needed,
    )


class ClusterData:
    """A task's distance matrices on one list of networks, for resampled label tests.

    The networks are the union of the matrices' networks; a network missing from a matrix
    (or dropped as incomparable, as the finding does) is absent from that matrix's tests.
    Results are cached per (distance, label, resamples), so the clustering, topology and
    CKA-vs-SVCCA findings of a task share one set of resampled tests.
    """

    def __init__(self, task: str, mats: Mapping[str, xr.DataArray]):
        import rnnzoo_metrics as rm

        self.task = task
        ids: list[str] = []
        arch: dict[str, str] = {}
        act: dict[str, str] = {}
        for d in mats.values():
            if "arch" not in d.coords or "activation" not in d.coords:
                continue
            for i, a, f in zip(
                as_str(d["network"].values),
                as_str(d["arch"].values),
                as_str(d["activation"].values),
                strict=True,
            ):
                if i not in arch:
                    ids.append(i)
                    arch[i], act[i] = a, f
        self.ids = ids
        self.arch = np.array([arch[i] for i in ids], dtype=object)
        self.activation = np.array([act[i] for i in ids], dtype=object)
        self.cells = cells_of(self.arch, self.activation)
        pos = {i: k for k, i in enumerate(ids)}
        self.full: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for key, d in mats.items():
            if np.isnan(np.asarray(d.values)).any():
                d = rm.drop_incomparable(d)
            names = as_str(d["network"].values)
            mine = [k for k, i in enumerate(names) if i in pos]
            rows = [pos[names[k]] for k in mine]
            full = np.full((len(ids), len(ids)), np.nan)
            sub = np.asarray(d.values, dtype=float)[np.ix_(mine, mine)]
            full[np.ix_(rows, rows)] = sub
            present = np.zeros(len(ids), dtype=bool)
            present[rows] = True
            self.full[key] = (full, present)
        self._cache: dict[tuple, dict[str, np.ndarray]] = {}
        self._tests: dict[tuple[str, str], stats.LabelTest] = {}

    def _labels(self, by: str) -> tuple[np.ndarray, np.ndarray | None]:
        labels, strata = (
            (self.arch, self.activation) if by == "arch" else (self.activation, self.arch)
        )
        return labels, (strata if len(set(strata.tolist())) >= 2 else None)

    def register(self, key: str, by: str, test: stats.LabelTest) -> None:
        """The zoo's own label test of ``by`` on ``key`` (its null gives resampled p-values)."""
        self._tests[(key, by)] = test

    def _zoo_test(self, key: str, by: str) -> stats.LabelTest:
        if (key, by) not in self._tests:
            full, present = self.full[key]
            labels, strata = self._labels(by)
            sel = np.flatnonzero(present)
            self._tests[(key, by)] = stats.label_test(
                full[np.ix_(sel, sel)], labels[sel], None if strata is None else strata[sel]
            )
        return self._tests[(key, by)]

    def test(self, key: str, by: str, idx: np.ndarray) -> dict[str, np.ndarray]:
        """Label test of ``by`` on distance ``key`` (within the other factor) per resample.

        The silhouette is recomputed on each resample (:func:`resampled_silhouettes`) and
        centred on the zoo's own (bootstrap bias correction: a resample holds ~63% distinct
        networks, and the silhouette's minimum over the other groups is lower on fewer
        networks, e.g. -0.088 against -0.063 on a synthetic zoo without clustering); its
        p-values and chance level are those of the zoo's permutation null.
        """
        tag = (key, by, idx.shape, hash(idx.tobytes()))
        if tag not in self._cache:
            full, present = self.full[key]
            labels, strata = self._labels(by)
            res = resampled_silhouettes(full, present, labels, strata, idx)
            zoo = self._zoo_test(key, by)
            if zoo.null is None or not np.isfinite(zoo.silhouette):
                res["testable"][:] = False
                nan = np.full(len(idx), np.nan)
                res.update(null_mean=nan, p_value=nan, p_lower=nan, silhouette=nan)
            else:
                if res["testable"].any():
                    bias = float(np.nanmean(res["silhouette"])) - zoo.silhouette
                    res["silhouette"] = res["silhouette"] - bias
                res["p_value"], res["p_lower"] = null_p_values(zoo.null, res["silhouette"])
                res["null_mean"] = np.full(len(idx), zoo.null_mean)
            self._cache[tag] = res
        return self._cache[tag]


def _excess(t: dict[str, np.ndarray]) -> np.ndarray:
    return t["silhouette"] - t["null_mean"]


def clustering_resampler(data: ClusterData, key: str, by: str, effect: float) -> Resampler:
    """Geometry-like clustering claim: the labels cluster (stats.verdict on the label test)."""

    def run(idx):
        t = data.test(key, by, idx)
        verdicts = np.array(
            [
                stats.verdict(bool(s > nm), p, int(m), pl) if ok else stats.INCONCLUSIVE
                for s, nm, p, m, pl, ok in zip(
                    t["silhouette"],
                    t["null_mean"],
                    t["p_value"],
                    t["min_group"],
                    t["p_lower"],
                    t["testable"],
                    strict=True,
                )
            ],
            dtype=object,
        )
        return verdicts, _excess(t)

    return Resampler(
        data.cells, run, effect, "silhouette excess over chance", seed_key=f"cluster/{data.task}"
    )


def topology_resampler(data: ClusterData, key: str, by: str, effect: float, margin: float):
    """Topology vs SVCCA: effect = SVCCA's excess over chance minus topology's."""

    def run(idx):
        t = data.test(key, by, idx)
        ref = data.test("svcca", by, idx)
        verdicts = []
        for i in range(len(idx)):
            if not (t["testable"][i] and ref["testable"][i]):
                verdicts.append(stats.INCONCLUSIVE)
                continue
            verdicts.append(
                stats.topology_verdict(
                    t["p_value"][i],
                    _excess(t)[i],
                    ref["p_value"][i],
                    _excess(ref)[i],
                    margin,
                )
            )
        return np.array(verdicts, dtype=object), _excess(ref) - _excess(t)

    def needed(n_cell, effects):
        if 0 < effect < margin:
            return math.inf, (
                f"the difference lies inside the rule's margin (0 to {margin:g}): more "
                "networks alone do not decide it"
            )
        boundary = margin if effect >= margin else 0.0
        return networks_needed(n_cell, effect, effects, THRESHOLD, boundary)

    return Resampler(
        data.cells,
        run,
        effect,
        "SVCCA's silhouette excess minus topology's",
        THRESHOLD,
        margin,
        seed_key=f"cluster/{data.task}",
        needed=needed,
    )


def agreement_resampler(
    data: ClusterData, labels: list[str], rho: float, needed_of: Callable[[], float | None]
) -> Resampler:
    """CKA vs SVCCA: the same clustering decisions; effect: Spearman rho of the distances."""
    from scipy.stats import spearmanr

    svcca, _ = data.full["svcca"]
    cka, _ = data.full["cka"]

    def run(idx):
        tests = {(k, by): data.test(k, by, idx) for k in ("svcca", "cka") for by in labels}
        verdicts, rhos = [], []
        for i, row in enumerate(idx):
            pairs = []
            for by in labels:
                ta, tb = tests[("svcca", by)], tests[("cka", by)]
                if ta["testable"][i] and tb["testable"][i]:
                    pairs.append((ta["p_value"][i], tb["p_value"][i], int(ta["min_group"][i])))
            verdicts.append(stats.agreement_verdict(pairs))
            iu = np.triu_indices(len(row), 1)
            distinct = row[iu[0]] != row[iu[1]]
            va = svcca[row[iu[0]], row[iu[1]]][distinct]
            vb = cka[row[iu[0]], row[iu[1]]][distinct]
            ok = np.isfinite(va) & np.isfinite(vb)
            rhos.append(
                float(spearmanr(va[ok], vb[ok]).statistic)
                if ok.sum() > 2 and np.ptp(va[ok]) and np.ptp(vb[ok])
                else math.nan
            )
        return np.array(verdicts, dtype=object), np.array(rhos)

    def needed(n_cell, effects):
        value = needed_of()
        return (math.inf if value is None else value), (
            "the largest of the networks needed by its SVCCA and CKA clustering tests"
        )

    return Resampler(
        data.cells,
        run,
        rho,
        "Spearman rho of SVCCA and CKA distances",
        seed_key=f"cluster/{data.task}",
        needed=needed,
    )


def fig4_resampler(d: xr.DataArray, direction_ok: Callable[[float, float], bool]) -> Resampler:
    """Fig. 4: resample the trained relu (reference), untrained relu and trained tanh networks.

    Per resample, each compared network's mean distance from the resampled reference
    networks, then the finding's permutation tests (both directions). Effect: mean distance
    to trained tanh minus to untrained relu (positive: the paper's direction).
    """
    act = as_str(d["activation"].values)
    tr = as_str(d["trained"].values)
    a = np.asarray(d.values, dtype=float)
    groups = {
        "ref": (act == "relu") & (tr == "trained"),
        "u": (act == "relu") & (tr == "untrained"),
        "t": (act == "tanh") & (tr == "trained"),
    }
    keep = groups["ref"] | groups["u"] | groups["t"]
    pos = np.flatnonzero(keep)
    sub = a[np.ix_(pos, pos)]
    kind = np.where(groups["ref"][pos], "ref", np.where(groups["u"][pos], "u", "t"))
    test = TwoGroupTest()

    def means(row):
        ref = row[kind[row] == "ref"]
        out = {}
        for g in ("u", "t"):
            cols = row[kind[row] == g]
            out[g] = sub[np.ix_(ref, cols)].mean(axis=0)
        return out

    def one(row):
        m = means(row)
        u, t = m["u"], m["t"]
        p, p_opp = test.p(u, t), test.p(t, u)
        verdict = stats.verdict(direction_ok(u.mean(), t.mean()), p, min(len(u), len(t)), p_opp)
        return verdict, float(t.mean() - u.mean())

    m0 = means(np.arange(len(pos)))
    return Resampler(
        np.array([f"vanilla-{k}" for k in kind], dtype=object),
        lambda idx: _per_resample(idx, one),
        float(m0["t"].mean() - m0["u"].mean()),
        "SVCCA distance to trained tanh minus to untrained relu",
    )
