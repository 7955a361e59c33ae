"""The paper's findings, recomputed on a zoo: numbers, the paper's statement, a verdict.

Nothing here is typed in: every number comes from the stored analyses and distance
matrices, and every verdict from a rule in :mod:`rnnzoo_paper.stats` (stated in the report
next to the finding). Findings that cannot be computed on a zoo (e.g. a zoo with one
activation has no activation clustering) are reported as such, without numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import xarray as xr

from . import resamplers as rs
from . import stats
from .data import GRAPH_ANALYSES, as_str, dynamics, select_rows
from .derived import (
    ABLATION_TOLERANCE,
    NEAR_ONE,
    cdi_modes,
    fig4_groups,
    fixed_point_counts,
    line_graph_nodes,
    modal,
    sine_errors,
    sine_orbit_points,
)
from .distances import DISTANCES
from .firmness import apply_firmness, cells_of
from .style import label as display

#: fraction of networks that "the vast majority" means (paper: fewer than 10% discarded)
MAJORITY = 0.9
#: sine: mean relative error of the linearised frequency counted as "good alignment"
GOOD_ALIGNMENT = 0.1
#: silhouette margin by which topology must cluster less than geometry ("much less")
MARGIN = 0.1
GEOMETRY = ("svcca", "cka")
TOPOLOGY = ("graph", "graph-matched")
FIGURE = {"flipflop": "1", "sine": "2", "cdi": "3"}
TASK_NAME = {
    "flipflop": "3-bit flip-flop",
    "sine": "sine wave",
    "cdi": "context-dependent integration",
}

RULE_TEST = (
    f"agrees: effect in the paper's direction with p <= {stats.ALPHA}; differs: the opposite "
    f"effect with p <= {stats.ALPHA}, or no significant effect with >= {stats.N_ENOUGH} networks "
    "in every group; otherwise inconclusive at this zoo size"
)
RULE_THRESHOLD = (
    f"agrees: the stated threshold is met; differs: not met on >= {stats.N_ENOUGH} networks; "
    "otherwise inconclusive at this zoo size"
)
RULE_TOPOLOGY = (
    f"agrees: SVCCA geometry clusters (p <= {stats.ALPHA}) and topology clearly less (graph "
    f"p > {stats.ALPHA}, or a silhouette excess over chance at least {MARGIN} lower); differs: "
    "topology clusters significantly and at least as strongly as SVCCA; otherwise "
    "inconclusive at this zoo size"
)


@dataclass
class Finding:
    """One computed finding.

    Attributes
    ----------
    key : str
        Stable identifier (``cluster/flipflop/svcca/arch``).
    topic : str
        Report section.
    claim : str
        The paper's statement (with its figure).
    result : str
        What this zoo shows, in words with the numbers.
    verdict : str
        ``agrees``, ``differs`` or ``inconclusive at this zoo size``.
    rule : str
        How the verdict was decided.
    numbers : dict of str to float
        Every number behind the result (finite; a finding that cannot be computed has none).
    point_verdict : str
        The verdict on the zoo itself, before its firmness is known
        (:func:`rnnzoo_paper.firmness.apply_firmness`); ``verdict`` keeps it only when firm.
    firmness : dict
        How firm the verdict is over resampled networks (``rnnzoo_paper.firmness.assess``):
        fraction of resamples giving it, lean, effect with its 95% interval, networks per
        cell type that would decide it. Empty for a finding that cannot be computed.
    resampler : rnnzoo_paper.firmness.Resampler or None
        How to recompute the finding on resampled networks (not serialised).
    """

    key: str
    topic: str
    claim: str
    result: str
    verdict: str
    rule: str
    numbers: dict[str, float] = field(default_factory=dict)
    point_verdict: str = ""
    firmness: dict[str, Any] = field(default_factory=dict)
    resampler: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(replace(self, resampler=None)).items() if k != "resampler"}


def _cells(ds: xr.Dataset, ids=None) -> np.ndarray:
    """Cell types (``arch-activation``) of ``ds``'s networks, or of ``ids`` among them."""
    cells = cells_of(as_str(ds["arch"].values), as_str(ds["activation"].values))
    if ids is None:
        return cells
    pos = {n: i for i, n in enumerate(as_str(ds["network"].values))}
    return np.array([cells[pos[i]] for i in ids], dtype=object)


def _fmt_p(p: float) -> str:
    return f"p = {p:.3f}" if p >= 0.001 else "p < 0.001"


def _label_test(d: xr.DataArray, by: str, other: str) -> tuple[stats.LabelTest | None, str]:
    """Label test of ``by`` on ``d`` (permuted within ``other``); None and why if impossible."""
    import rnnzoo_metrics as rm

    if np.isnan(np.asarray(d.values)).any():
        d = rm.drop_incomparable(d)
    if by not in d.coords:
        return None, f"no {by} coordinate"
    labels = as_str(d[by].values)
    groups = sorted(set(labels.tolist()))
    if len(groups) < 2:
        return None, f"the zoo has one {by} only ({', '.join(groups) or 'none'})"
    strata = as_str(d[other].values) if other in d.coords else None
    if strata is not None and len(set(strata.tolist())) < 2:
        strata = None
    t = stats.label_test(np.asarray(d.values, dtype=float), labels, strata)
    if not t.testable:
        return None, f"too few comparable networks per {by} group ({t.n} networks)"
    return t, ""


def _cluster_data(
    task: str, mats: Mapping[str, xr.DataArray], data: dict[str, rs.ClusterData] | None
) -> rs.ClusterData:
    if data is None:
        return rs.ClusterData(task, mats)
    if task not in data:
        data[task] = rs.ClusterData(task, mats)
    return data[task]


def clustering_findings(
    distances: Mapping[str, Mapping[str, xr.DataArray]],
    data: dict[str, rs.ClusterData] | None = None,
) -> list[Finding]:
    """Issue point 6: silhouette of architecture / activation labels on every distance.

    ``data``: per task, the resampling data shared with :func:`agreement_findings` (built
    here when absent).
    """
    out: list[Finding] = []
    for task, mats in distances.items():
        cdata = _cluster_data(task, mats, data)
        tests: dict[tuple[str, str], stats.LabelTest] = {}
        for key in (*GEOMETRY, *TOPOLOGY):
            if key not in mats:
                continue
            for by, other in (("arch", "activation"), ("activation", "arch")):
                t, why = _label_test(mats[key], by, other)
                fkey = f"cluster/{task}/{key}/{by}"
                title = DISTANCES[key].title
                word = "architecture" if by == "arch" else "activation"
                claim = _cluster_claim(task, key, by)
                if t is None:
                    out.append(
                        Finding(
                            fkey,
                            "clustering",
                            claim,
                            f"not computable: {why}",
                            stats.INCONCLUSIVE,
                            RULE_TEST,
                        )
                    )
                    continue
                tests[(key, by)] = t
                cdata.register(key, by, t)
                numbers = {
                    "silhouette": t.silhouette,
                    "p_value": t.p_value,
                    "n_networks": float(t.n),
                    "min_group": float(t.min_group),
                }
                within = "activation" if by == "arch" else "architecture"
                result = (
                    f"{title}: silhouette by {word} (within each {within}) {t.silhouette:+.3f} "
                    f"vs {t.null_mean:+.3f} by chance, {_fmt_p(t.p_value)} ({t.n} networks, "
                    f"smallest group {t.min_group})"
                )
                numbers["chance_silhouette"] = t.null_mean
                excess = t.silhouette - t.null_mean
                if key in GEOMETRY or (task, by) == ("cdi", "activation"):
                    verdict = stats.verdict(
                        t.silhouette > t.null_mean, t.p_value, t.min_group, t.p_lower
                    )
                    rule = RULE_TEST
                    resampler = rs.clustering_resampler(cdata, key, by, excess)
                else:
                    ref = tests.get(("svcca", by))
                    verdict, extra = _topology_verdict(t, ref)
                    result += extra
                    rule = RULE_TOPOLOGY
                    resampler = None
                    if ref is not None:
                        numbers["svcca_silhouette"] = ref.silhouette
                        numbers["svcca_chance_silhouette"] = ref.null_mean
                        resampler = rs.topology_resampler(
                            cdata, key, by, (ref.silhouette - ref.null_mean) - excess, MARGIN
                        )
                out.append(
                    Finding(
                        fkey,
                        "clustering",
                        claim,
                        result,
                        verdict,
                        rule,
                        numbers,
                        resampler=resampler,
                    )
                )
    return out


def _cluster_claim(task: str, key: str, by: str) -> str:
    fig = FIGURE.get(task, "?")
    word = "architecture" if by == "arch" else "activation"
    if key in GEOMETRY:
        panel = {"1": "1d", "2": "2c", "3": "3c"}.get(fig, "")
        where = f"Fig. {panel}" if key == "svcca" else f"Appendix E (Fig. {panel} with CKA)"
        return (
            f"{TASK_NAME.get(task, task)}: representational geometry clusters by {word} ({where})"
        )
    panel = {"1": "1f", "2": "2e", "3": "3d"}.get(fig, "")
    if task == "cdi" and by == "activation":
        return "cdi: the line-attractor topology did cluster by activation (Fig. 3d)"
    if task == "cdi":
        return "cdi: the line-attractor topology did not cluster strongly by architecture (Fig. 3d)"
    if task == "sine":
        return f"sine: the fixed-point topology did not vary systematically by {word} (Fig. 2e)"
    return (
        f"{TASK_NAME.get(task, task)}: fixed-point topology is far more similar across "
        f"{word}s than geometry (Fig. {panel})"
    )


def _topology_verdict(t: stats.LabelTest, ref: stats.LabelTest | None) -> tuple[str, str]:
    """Topology vs SVCCA geometry, comparing silhouettes in excess of their chance level."""
    if ref is None:
        return stats.INCONCLUSIVE, "; no SVCCA test to compare with"
    mine, theirs = t.silhouette - t.null_mean, ref.silhouette - ref.null_mean
    extra = f"; excess over chance {mine:+.3f} vs SVCCA's {theirs:+.3f} ({_fmt_p(ref.p_value)})"
    return stats.topology_verdict(t.p_value, mine, ref.p_value, theirs, MARGIN), extra


def fixed_point_findings(zoo, tasks: list[str]) -> list[Finding]:
    """Issue point 7: fixed-point counts, sine frequencies, cdi modes.

    What is counted for "the same number of fixed points" is what the paper's graph
    comparison needs for each task: flip-flop, every true fixed point (the transition-graph
    nodes); sine, the true fixed points near the probe orbits (the paper's one point per
    frequency; points far from anything the network visits do not enter the analysis);
    cdi, the nodes of the line-attractor graphs of both contexts (a line attractor is a
    continuum, found as any number of discrete points, so the raw count is meaningless).
    """
    out: list[Finding] = []
    for task in tasks:
        summary = dynamics(zoo, task, "dynamics_summary")
        if summary is None:
            continue
        counts = fixed_point_counts(summary)
        n = len(counts["network"])
        if n == 0:
            out.append(
                Finding(
                    f"fixed-points/{task}/count",
                    "fixed points",
                    "the vast majority of trained networks have the same number of fixed "
                    "points (Discussion)",
                    "not computable: no network has fixed points",
                    stats.INCONCLUSIVE,
                    RULE_THRESHOLD,
                )
            )
            continue
        if task == "sine":
            out += _sine_count_finding(zoo, counts)
        elif task == "cdi":
            out += _cdi_count_finding(zoo, counts, _cells(summary, counts["network"]))
        else:
            mode, frac = modal(counts["n_fixed"])
            out.append(
                Finding(
                    f"fixed-points/{task}/count",
                    "fixed points",
                    f"{task}: the vast majority of trained networks have the same number of "
                    "fixed points (Discussion; fewer than 10% discarded, footnote 5)",
                    f"modal number of fixed points {mode}; {frac:.0%} of {n} networks have it "
                    f"(range {counts['n_fixed'].min()}-{counts['n_fixed'].max()})",
                    stats.threshold_verdict(frac >= MAJORITY, n),
                    RULE_THRESHOLD + f" (threshold: >= {MAJORITY:.0%} at the modal count)",
                    {
                        "modal_count": float(mode),
                        "fraction_at_mode": frac,
                        "n_networks": float(n),
                    },
                    resampler=rs.modal_resampler(
                        _cells(summary, counts["network"]), counts["n_fixed"], MAJORITY
                    ),
                )
            )
        if task == "flipflop":
            out += _flipflop_findings(zoo, counts, _cells(summary, counts["network"]))
        if task == "sine":
            out += _sine_findings(zoo)
        if task == "cdi":
            out += _cdi_findings(zoo)
    return out


def _sine_count_finding(zoo, counts: dict[str, np.ndarray]) -> list[Finding]:
    """Same number of fixed points, counting the true fixed points near the probe orbits."""
    freq = dynamics(zoo, "sine", "sine_frequency")
    claim = (
        "sine: the vast majority of trained networks have the same number of fixed points "
        "(Discussion; fewer than 10% discarded, footnote 5), here the fixed points near the "
        "probe orbits (one per frequency in the paper, Fig. 2d)"
    )
    if freq is None:
        return []
    freq = select_rows(freq, counts["network"].tolist())
    near = sine_orbit_points(freq)
    n = len(near)
    if n == 0:
        return [
            Finding(
                "fixed-points/sine/count",
                "fixed points",
                claim,
                "not computable: no analysed network in sine_frequency",
                stats.INCONCLUSIVE,
                RULE_THRESHOLD,
            )
        ]
    mode, frac = modal(near)
    mode_all, frac_all = modal(counts["n_fixed"])
    n_freq = freq.sizes["condition"]
    return [
        Finding(
            "fixed-points/sine/count",
            "fixed points",
            claim,
            f"modal number of true fixed points near the orbits {mode} over the {n_freq} "
            f"frequencies; {frac:.0%} of {n} networks have it (range {near.min()}-{near.max()}); "
            f"counting every fixed point found: modal {mode_all}, {frac_all:.0%}",
            stats.threshold_verdict(frac >= MAJORITY, n),
            RULE_THRESHOLD + f" (threshold: >= {MAJORITY:.0%} at the modal count)",
            {
                "modal_count": float(mode),
                "fraction_at_mode": frac,
                "n_networks": float(n),
                "n_frequencies": float(n_freq),
                "modal_count_all_points": float(mode_all),
                "fraction_at_mode_all_points": frac_all,
            },
            resampler=rs.modal_resampler(_cells(freq), near, MAJORITY),
        )
    ]


def _cdi_count_finding(zoo, counts: dict[str, np.ndarray], cells: np.ndarray) -> list[Finding]:
    """Same number of line-attractor graph nodes in every context (comparable networks)."""
    graphs = [dynamics(zoo, "cdi", name) for name in GRAPH_ANALYSES["cdi"]]
    claim = (
        "cdi: the vast majority of trained networks have the same number of fixed points "
        "on their line attractors, so that their line-attractor graphs can be compared "
        "(Discussion; fewer than 10% discarded, footnote 5; Fig. 3d)"
    )
    if any(g is None for g in graphs):
        return []
    ids = counts["network"].tolist()
    nodes = line_graph_nodes(graphs, ids)
    n = len(ids)
    # the modal size of the graphs that are line attractors (0 or 1 node: none found)
    lines = nodes[nodes >= 2]
    mode = modal(lines)[0] if lines.size else 0
    at_mode = (nodes == mode).all(axis=1) if mode else np.zeros(n, dtype=bool)
    frac = float(at_mode.mean())
    per_context = [float(np.mean(nodes[:, c] == mode)) for c in range(nodes.shape[1])]
    empty = int((nodes < 2).any(axis=1).sum())
    ctx_text = ", ".join(f"context {c} {int(round(f * n))}" for c, f in enumerate(per_context))
    mode_raw, frac_raw = modal(counts["n_fixed"])
    numbers = {
        "modal_count": float(mode),
        "fraction_at_mode": frac,
        "n_networks": float(n),
        "n_without_attractor": float(empty),
        "modal_count_all_points": float(mode_raw),
        "fraction_at_mode_all_points": frac_raw,
    }
    numbers.update({f"fraction_at_mode_context{c}": f for c, f in enumerate(per_context)})
    if mode:
        head = (
            f"{int(at_mode.sum())} of {n} networks ({frac:.0%}) have a line attractor in every "
            f"context, resampled at the modal {mode} nodes ({ctx_text}); {empty} networks have "
            "no line attractor (fewer than two attractor points with different readouts) in "
            "a context. rnnzoo-dynamics resamples every attractor found at the same number of "
            "nodes, so this counts the networks whose line-attractor graphs can be compared"
        )
    else:
        head = (
            f"no network has a line attractor (two or more attractor points with different "
            f"readouts) in a context; {n} networks"
        )
    return [
        Finding(
            "fixed-points/cdi/count",
            "fixed points",
            claim,
            f"{head}; the raw number of true fixed points found (a continuum sampled at "
            f"discrete points) ranges {counts['n_fixed'].min()}-{counts['n_fixed'].max()} "
            f"(modal {mode_raw}, {frac_raw:.0%})",
            stats.threshold_verdict(frac >= MAJORITY, n),
            RULE_THRESHOLD
            + f" (threshold: >= {MAJORITY:.0%} with a line attractor of the modal node count "
            "in every context)",
            numbers,
            resampler=rs.line_attractor_resampler(cells, nodes, MAJORITY),
        )
    ]


def _flipflop_findings(zoo, counts: dict[str, np.ndarray], cells: np.ndarray) -> list[Finding]:
    out = []
    n = len(counts["network"])
    mode, frac = modal(counts["n_stable"])
    eight = float(np.mean(counts["n_stable"] == 8))
    out.append(
        Finding(
            "fixed-points/flipflop/stable",
            "fixed points",
            "flip-flop: networks encode the 2^3 outputs as 8 stable fixed points (Fig. 1e)",
            f"modal number of stable fixed points {mode} ({frac:.0%} of {n} networks); "
            f"{eight:.0%} have exactly 8",
            stats.threshold_verdict(mode == 8, n),
            RULE_THRESHOLD + " (threshold: the modal number of stable points is 8)",
            {"modal_stable": float(mode), "fraction_at_mode": frac, "fraction_8": eight},
            resampler=rs.mode_is_resampler(cells, counts["n_stable"], 8),
        )
    )
    graph = dynamics(zoo, "flipflop", "transition_graph")
    if graph is not None:
        ok = set(counts["network"].tolist())
        sel = np.isin(as_str(graph["network"].values), list(ok))
        nodes = np.asarray(graph["graph_n_nodes"].values)[sel]
        if len(nodes):
            gm, gf = modal(nodes)
            out.append(
                Finding(
                    "fixed-points/flipflop/graph-nodes",
                    "fixed points",
                    "flip-flop: networks with a transition-graph node count other than the "
                    "modal one are less than 10% (footnote 5)",
                    f"modal transition-graph size {gm} nodes; {gf:.0%} of {len(nodes)} networks",
                    stats.threshold_verdict(gf >= MAJORITY, len(nodes)),
                    RULE_THRESHOLD + f" (threshold: >= {MAJORITY:.0%})",
                    {"modal_nodes": float(gm), "fraction_at_mode": gf},
                    resampler=rs.modal_resampler(_cells(graph)[sel], nodes, MAJORITY),
                )
            )
    return out


def _sine_findings(zoo) -> list[Finding]:
    freq = dynamics(zoo, "sine", "sine_frequency")
    if freq is None:
        return []
    err = sine_errors(freq)
    out = []
    near = np.asarray(freq["n_points"].values)
    one = float(np.mean(near == 1))
    numbers_one = {"fraction_one_point": one, "fraction_no_point": float(np.mean(near == 0))}
    extra = ""
    if "n_points_all" in freq:
        one_all = float(np.mean(np.asarray(freq["n_points_all"].values) == 1))
        numbers_one["fraction_one_point_any_distance"] = one_all
        extra = f"; {one_all:.0%} have exactly one fixed point at any distance"
    out.append(
        Finding(
            "sine/one-point-per-frequency",
            "fixed points",
            "sine: a single input-dependent fixed point for each command frequency, in the "
            "middle of its oscillatory trajectory (Fig. 2d)",
            f"{one:.0%} of (network, frequency) pairs have exactly one true fixed point near "
            f"the orbit ({err.sizes['network']} networks x {freq.sizes['condition']} "
            f"frequencies; {np.mean(near == 0):.0%} have none, {np.mean(near > 1):.0%} more "
            f"than one){extra}",
            stats.threshold_verdict(one >= MAJORITY, err.sizes["network"]),
            RULE_THRESHOLD + f" (threshold: >= {MAJORITY:.0%}; near the orbit: within 2 orbit "
            "radii of the probe flow, rnnzoo-dynamics' sine_frequency.n_points)",
            numbers_one,
            resampler=rs.fraction_resampler(
                _cells(freq),
                (near == 1).mean(axis=1),
                MAJORITY,
                "fraction of (network, frequency) pairs with one point",
                n_total=err.sizes["network"],
            ),
        )
    )
    rel = np.asarray(err["relative_error"].values)
    fin = rel[np.isfinite(rel)]
    numbers: dict[str, float] = {}
    parts = []
    arch = as_str(err["arch"].values)
    act = as_str(err["activation"].values)
    for a in dict.fromkeys(arch.tolist()):
        r = rel[(arch == a) & np.isfinite(rel)]
        if len(r):
            numbers[f"relative_error_{a}"] = float(np.mean(r))
            parts.append(f"{display(a)} {np.mean(r):.1%}")
    if len(fin) == 0:
        out.append(
            Finding(
                "sine/frequency-alignment",
                "linearised dynamics",
                "sine: the linearised oscillation frequency aligns well with the command (Fig. 2f)",
                "not computable: no network has an oscillatory mode",
                stats.INCONCLUSIVE,
                RULE_THRESHOLD,
            )
        )
        return out
    med = float(np.median(fin))
    numbers["median_relative_error"] = med
    out.append(
        Finding(
            "sine/frequency-alignment",
            "linearised dynamics",
            "sine: the frequency of the linearised oscillatory mode aligns well with the "
            "commanded frequency (Fig. 2d-f)",
            f"median relative error |f_lin - ω|/ω {med:.1%} over {len(fin)} networks; "
            f"mean per architecture: {', '.join(parts)}",
            stats.threshold_verdict(med <= GOOD_ALIGNMENT, len(fin)),
            RULE_THRESHOLD + f" (threshold: median relative error <= {GOOD_ALIGNMENT:.0%})",
            numbers,
            resampler=rs.median_below_resampler(
                _cells(err), rel, GOOD_ALIGNMENT, "median relative error"
            ),
        )
    )
    signed = np.asarray(err["signed_error"].values)
    groups = {
        a: signed[(arch == a) & (act == "tanh") & np.isfinite(signed)]
        for a in dict.fromkeys(arch[act == "tanh"].tolist())
    }
    groups = {a: g for a, g in groups.items() if len(g) >= 2}
    claim = (
        "sine: small but systematic differences between architectures in the linearised "
        "frequency error (Fig. 2f)"
    )
    if len(groups) < 2:
        out.append(
            Finding(
                "sine/frequency-by-arch",
                "linearised dynamics",
                claim,
                "not computable: fewer than two architectures with two tanh networks",
                stats.INCONCLUSIVE,
                RULE_TEST,
            )
        )
        return out
    from scipy.stats import kruskal

    if np.ptp(np.concatenate(list(groups.values()))) == 0:
        h, p = 0.0, 1.0
    else:
        h, p = kruskal(*groups.values())
    min_group = min(len(g) for g in groups.values())
    means = ", ".join(f"{display(a)} {np.mean(g):+.4f}" for a, g in groups.items())
    out.append(
        Finding(
            "sine/frequency-by-arch",
            "linearised dynamics",
            claim,
            f"mean signed error f_lin - ω (cycles/step, tanh networks): {means}; "
            f"Kruskal-Wallis H = {h:.2f}, {_fmt_p(float(p))}",
            stats.verdict(True, float(p), min_group),
            RULE_TEST,
            {"kruskal_h": float(h), "p_value": float(p), "min_group": float(min_group)},
            resampler=rs.kruskal_resampler(
                _cells(err)[act == "tanh"], signed[act == "tanh"], arch[act == "tanh"]
            ),
        )
    )
    return out


def _cdi_findings(zoo) -> list[Finding]:
    cdi = dynamics(zoo, "cdi", "cdi_linear")
    if cdi is None:
        return []
    modes = cdi_modes(cdi)
    arch = as_str(modes["arch"].values)
    act = as_str(modes["activation"].values)
    out = []
    tanh_all = act == "tanh" if (act == "tanh").any() else np.ones_like(act, dtype=bool)
    n_tanh = int(tanh_all.sum())
    with_line = int(np.sum(np.asarray(modes["line_contexts"].values)[tanh_all] > 0))
    for var, claim, what in (
        (
            "near_one",
            "cdi: the Vanilla RNN integrates with one eigenvalue near 1; gated architectures "
            "have many more eigenvalues near 1 (Fig. 3e, sorted eigenvalues on the line "
            "attractor)",
            f"eigenvalues with |λ| >= {NEAR_ONE}",
        ),
        (
            "modes_needed",
            "cdi: the Vanilla RNN uses a single linear mode to integrate, gated architectures "
            "distribute it across more modes (Fig. 3f: linearised dynamics averaged over all "
            "fixed points on the line attractor)",
            f"modes needed to stay within {ABLATION_TOLERANCE:.0%} of the full linear response",
        ),
    ):
        values = np.asarray(modes[var].values)
        tanh = act == "tanh" if (act == "tanh").any() else np.ones_like(act, dtype=bool)
        vanilla = values[(arch == "vanilla") & tanh & np.isfinite(values)]
        gated = values[(arch != "vanilla") & tanh & np.isfinite(values)]
        per_arch = {
            a: values[(arch == a) & tanh & np.isfinite(values)]
            for a in dict.fromkeys(arch[tanh].tolist())
        }
        numbers = {f"median_{a}": float(np.median(v)) for a, v in per_arch.items() if len(v)}
        numbers.update({"n_with_line_attractor": float(with_line), "n_tanh": float(n_tanh)})
        text = ", ".join(f"{display(a)} {np.median(v):g}" for a, v in per_arch.items() if len(v))
        coverage = (
            f" ({with_line} of {n_tanh} tanh networks have a line attractor in at least one "
            "context; averaged over its points on the line attractor, networks without one "
            "left out)"
        )
        response = ""
        if var == "modes_needed":
            full = np.asarray(modes["response_full"].values)[tanh]
            full_all = np.asarray(modes["response_full_all"].values)[tanh]
            full, full_all = full[np.isfinite(full)], full_all[np.isfinite(full_all)]
            if len(full):
                numbers["median_response_full"] = float(np.median(full))
                response = (
                    f"; median full linear response to a unit pulse {np.median(full):.2f} "
                    "(ideal integrator 1)"
                )
                if len(full_all):
                    numbers["median_response_full_all_points"] = float(np.median(full_all))
                    response += (
                        f", {np.median(full_all):.3g} when averaged over every fixed point of "
                        "a context instead (unstable points off the line dominate)"
                    )
        if len(vanilla) == 0 or len(gated) == 0:
            out.append(
                Finding(
                    f"cdi/{var}",
                    "linearised dynamics",
                    claim,
                    f"not computable: needs tanh Vanilla and gated networks ({text or 'none'})"
                    f"{coverage}{response}",
                    stats.INCONCLUSIVE,
                    RULE_TEST,
                    numbers,
                )
            )
            continue
        p = stats.exact_two_group_test(vanilla, gated)
        p_opposite = stats.exact_two_group_test(gated, vanilla)
        in_direction = _vanilla_fewer(vanilla, gated)
        numbers.update({"p_value": p, "n_vanilla": float(len(vanilla))})
        out.append(
            Finding(
                f"cdi/{var}",
                "linearised dynamics",
                claim,
                f"median {what} per architecture (tanh): {text}{coverage}; Vanilla fewer than "
                f"gated: {_fmt_p(p)} (permutation test on means){response}",
                stats.verdict(in_direction, p, min(len(vanilla), len(gated)), p_opposite),
                RULE_TEST + " (direction: Vanilla median <= 1 mode and Vanilla mean < gated mean)",
                numbers,
                resampler=rs.two_group_resampler(
                    _cells(modes)[tanh],
                    values[tanh],
                    arch[tanh] == "vanilla",
                    _vanilla_fewer,
                    f"gated minus Vanilla mean ({what})",
                ),
            )
        )
    return out


def _vanilla_fewer(vanilla: np.ndarray, gated: np.ndarray) -> bool:
    """The paper's direction for cdi's modes: Vanilla ~1 mode, fewer than the gated cells."""
    return bool(np.median(vanilla) <= 1.5 and np.mean(vanilla) < np.mean(gated))


def fig4_finding(d: xr.DataArray | None) -> list[Finding]:
    """Fig. 4: trained relu vs untrained relu, against trained relu vs trained tanh."""
    claim = (
        "SVCCA: trained and untrained relu Vanilla networks are closer to each other than "
        "trained relu are to trained tanh networks (Fig. 4, cdi inputs)"
    )
    if d is None:
        return [
            Finding(
                "fig4/trained-untrained",
                "trained vs untrained",
                claim,
                "not computable: no Vanilla networks on cdi",
                stats.INCONCLUSIVE,
                RULE_TEST,
            )
        ]
    g = fig4_groups(d)
    if "untrained relu" not in g or "trained tanh" not in g:
        return [
            Finding(
                "fig4/trained-untrained",
                "trained vs untrained",
                claim,
                "not computable: needs trained and untrained relu and trained tanh Vanilla "
                "networks with finite states",
                stats.INCONCLUSIVE,
                RULE_TEST,
            )
        ]
    u, t = g["untrained relu"], g["trained tanh"]
    p = stats.exact_two_group_test(u, t)
    p_opposite = stats.exact_two_group_test(t, u)
    numbers = {
        "svcca_trained_relu_untrained_relu": float(np.mean(u)),
        "svcca_trained_relu_trained_tanh": float(np.mean(t)),
        "p_value": p,
        "p_value_opposite": p_opposite,
        "n_untrained_relu": float(len(u)),
        "n_trained_tanh": float(len(t)),
    }
    if "untrained tanh" in g:
        numbers["svcca_trained_relu_untrained_tanh"] = float(np.mean(g["untrained tanh"]))
    return [
        Finding(
            "fig4/trained-untrained",
            "trained vs untrained",
            claim,
            f"mean SVCCA distance from trained relu: to untrained relu {np.mean(u):.3f}, to "
            f"trained tanh {np.mean(t):.3f}; {_fmt_p(p)}, opposite direction "
            f"{_fmt_p(p_opposite)} (exact permutation tests over the {len(u)} + {len(t)} "
            "networks compared)",
            stats.verdict(bool(np.mean(u) < np.mean(t)), p, min(len(u), len(t)), p_opposite),
            RULE_TEST,
            numbers,
            resampler=rs.fig4_resampler(d, lambda mu, mt: bool(mu < mt)),
        )
    ]


def loss_findings(zoo, tasks: list[str]) -> list[Finding]:
    """Appendix C: every network reaches low error (fraction that solved its task)."""
    out = []
    for task in tasks:
        df = zoo.index(task)
        ok = df[df["status"].astype(str) == "ok"]
        n = len(df)
        solved = ok["solved"].astype(str).str.lower().isin(["true", "1"]).to_numpy()
        frac = float(solved.sum() / n) if n else math.nan
        loss = np.asarray(ok["test_loss"], dtype=float)
        loss = loss[np.isfinite(loss)]
        if n == 0 or len(loss) == 0:
            continue
        out.append(
            Finding(
                f"losses/{task}",
                "training",
                f"{task}: all networks achieve low error (section 2.1, Appendix C)",
                f"{int(solved.sum())} of {n} networks solved the task "
                f"({frac:.0%}; median test loss {np.median(loss):.3g}; "
                f"{n - len(ok)} not ok)",
                stats.threshold_verdict(frac >= MAJORITY, n),
                RULE_THRESHOLD + f" (threshold: >= {MAJORITY:.0%} solved)",
                {"fraction_solved": frac, "median_test_loss": float(np.median(loss))},
                resampler=rs.fraction_resampler(
                    cells_of(df["arch"].astype(str), df["activation"].astype(str)),
                    (df["status"].astype(str) == "ok").to_numpy()
                    & df["solved"].astype(str).str.lower().isin(["true", "1"]).to_numpy(),
                    MAJORITY,
                    "fraction solved",
                ),
            )
        )
    return out


def agreement_findings(
    distances: Mapping[str, Mapping[str, xr.DataArray]],
    data: dict[str, rs.ClusterData] | None = None,
    clustering: list[Finding] | None = None,
) -> list[Finding]:
    """Appendix E: SVCCA and CKA agree on whether networks cluster by arch / activation.

    ``data``: the resampling data shared with :func:`clustering_findings`; ``clustering``:
    its findings, whose networks-needed estimates (once assessed) give this finding's.
    """
    from scipy.stats import spearmanr

    out = []
    by_key = {f.key: f for f in clustering or []}
    for task, mats in distances.items():
        if "svcca" not in mats or "cka" not in mats:
            continue
        a, b = mats["svcca"], mats["cka"]
        common = [i for i in as_str(a["network"].values) if i in set(as_str(b["network"].values))]
        if len(common) < 3:
            continue
        a = a.sel(network=common, network_to=common)
        b = b.sel(network=common, network_to=common)
        iu = np.triu_indices(len(common), 1)
        va, vb = np.asarray(a.values)[iu], np.asarray(b.values)[iu]
        rho = float(spearmanr(va, vb).statistic) if np.ptp(va) and np.ptp(vb) else math.nan
        pairs, labels = [], []
        for by, other in (("arch", "activation"), ("activation", "arch")):
            ta, _ = _label_test(a, by, other)
            tb, _ = _label_test(b, by, other)
            if ta is None or tb is None:
                continue
            labels.append(by)
            pairs.append((ta.p_value, tb.p_value, ta.min_group))
        if not pairs or not math.isfinite(rho):
            continue
        same = all((pa <= stats.ALPHA) == (pb <= stats.ALPHA) for pa, pb, _ in pairs)
        verdict = stats.agreement_verdict(pairs)

        def needed_of(task=task, labels=tuple(labels)) -> float | None:
            """The largest networks-needed of the four clustering tests (firm: its size)."""
            values = []
            for key in ("svcca", "cka"):
                for by in labels:
                    found = by_key.get(f"cluster/{task}/{key}/{by}")
                    f = found.firmness if found is not None else None
                    if not f:
                        return None
                    need = f["n_per_cell"] if f["firm"] else f.get("networks_needed")
                    if need is None:
                        return None
                    values.append(need)
            return max(values) if values else None

        resampler = rs.agreement_resampler(_cluster_data(task, mats, data), labels, rho, needed_of)
        out.append(
            Finding(
                f"agreement/{task}",
                "CKA vs SVCCA",
                f"{task}: SVCCA and CKA give similar results on whether representations "
                "cluster by architecture or activation (Appendix E)",
                f"Spearman correlation of SVCCA and CKA distances over {len(va)} pairs "
                f"{rho:.2f}; the label tests {'agree' if same else 'disagree'} in significance",
                verdict,
                "agrees: the clustering tests of CKA and SVCCA reach the same decision "
                f"(p <= {stats.ALPHA}) for every testable label, and one of them is significant "
                f"or every group has >= {stats.N_ENOUGH} networks; differs: they disagree with "
                f">= {stats.N_ENOUGH} networks per group; otherwise inconclusive at this zoo size",
                {"spearman": rho, "n_pairs": float(len(va))},
                resampler=resampler,
            )
        )
    return out


#: seconds the last :func:`all_findings` spent deciding firmness (the report prints it)
LAST_FIRMNESS_SECONDS = 0.0


def all_findings(
    zoo,
    tasks: list[str],
    distances: Mapping[str, Mapping[str, xr.DataArray]],
    fig4: xr.DataArray | None,
    firmness: bool = True,
) -> list[Finding]:
    """Every finding of the report, in report order, each decided with its firmness.

    ``firmness=False`` keeps the zoo's own verdicts (no resampling).
    """
    global LAST_FIRMNESS_SECONDS
    data: dict[str, rs.ClusterData] = {}
    clustering = clustering_findings(distances, data)
    found = [
        *loss_findings(zoo, tasks),
        *clustering,
        *fixed_point_findings(zoo, tasks),
        *(fig4_finding(fig4) if "cdi" in tasks else []),
        *agreement_findings(distances, data, clustering),
    ]
    if firmness:
        LAST_FIRMNESS_SECONDS = apply_firmness(found)
    return found
