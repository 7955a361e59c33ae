"""The report's section *Beyond the paper: dynamical similarity* (issue 13, section 4).

Every number is read from a :class:`rnnzoo_paper.dynamical_similarity.DSAResult`; the rules
are printed under each table. The answers are the questions' own words (*like geometry* /
*like topology*, *closer to trained tanh* / *closer to untrained relu*), never *agrees* or
*differs*: these are not the paper's claims.
"""

from __future__ import annotations

import math
from typing import Any

from . import firmness as firm
from . import stats
from .distances import DISTANCES
from .dynamical_similarity import (
    ANSWERS,
    CHECK_SEARCH,
    CHECK_SUFFIX,
    CHECK_VARIANCE,
    COMPARED,
    DEFAULT_SEARCH,
    FIG4_KEY,
    FIGURE,
    KEY,
    LIKE_GEOMETRY,
    LIKE_TOPOLOGY,
    MAX_DELAYS,
    RULE_CLUSTER,
    RULE_FIRM,
    RULE_RANK,
    RULE_TRAINED,
    SAMPLE,
    UNDECIDED,
    WINDOW,
    DSAResult,
    Question,
    rule_defaults,
    stored_name,
)

TITLE = "## Beyond the paper: dynamical similarity"
BADGE = {
    LIKE_GEOMETRY: "🔷 like geometry",
    LIKE_TOPOLOGY: "🔶 like topology",
    UNDECIDED: "❔ inconclusive at this zoo size",
}
CAPTION = (
    "DSA (Ostrow et al. 2023) of the zoo's trained networks on the probe inputs. Per task "
    "(rows): MDS of the DSA distances by architecture (tanh networks) and by activation "
    "(Vanilla networks), laid out as the paper's SVCCA panels (Figs 1d, 2c, 3c), and the "
    "silhouette excess over chance of every distance by architecture and by activation "
    "(filled: p <= 0.05; grey: DSA at the rank check's rank): geometry-like DSA stands with "
    "SVCCA and CKA, topology-like DSA with the fixed-point graph distances. Bottom: Fig. 4's "
    "populations (Vanilla, cdi inputs): mean SVCCA and DSA distance (at the rule's rank and "
    "at the rank check's) from the trained relu networks to each population, and the MDS of "
    "the DSA distances of trained (filled) and untrained (open) networks."
)


def _esc(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _num(x: float, fmt: str = "+.3f") -> str:
    return format(x, fmt) if isinstance(x, float) and math.isfinite(x) else "n/a"


def _p(p: float) -> str:
    if not (isinstance(p, float) and math.isfinite(p)):
        return "n/a"
    return f"p={p:.3f}" if p >= 0.001 else "p<0.001"


def _rank_changed(q: Question) -> bool:
    """The answer was decided (firm) at the rule's rank but the rank check gave another."""
    return bool(q.rank_check) and not q.rank_check["agrees"] and bool(q.firmness.get("firm"))


def answer_text(q: Question) -> str:
    """The answer with its firmness and its rank check, in the question's words."""
    badge = BADGE.get(q.answer, q.answer)
    f = q.firmness
    check = q.rank_check
    if not f:
        return badge
    b = f["n_resamples"]
    if _rank_changed(q):
        return (
            f"{badge} (firm at the rule's rank: {q.point_answer}, {f['fraction']:.0%} of {b} "
            f"resamples; but at rank {check['rank']}: {check['answer']})"
        )
    if f["firm"]:
        same = f"; rank {check['rank']} too" if check else ""
        return f"{badge} (firm: {f['fraction']:.0%} of {b} resamples{same})"
    parts = []
    if f["min_cell"] < 2:
        parts.append("one network in a cell type")
    lean = q.answers.get(f["lean"], "") if f["lean"] else ""
    if lean:
        parts.append(f"leans {lean} ({f['lean_fraction']:.0%} of {b})")
    else:
        parts.append(f"no lean (neither answer in {b} resamples)")
    need = f.get("networks_needed")
    if need is not None:
        parts.append(f"~{int(need)} networks per cell type would decide it")
    elif "networks_needed" in f:
        parts.append(f"more than {firm.MAX_NEEDED:,} networks per cell type at this effect")
    return f"{badge} ({'; '.join(parts)})"


def _parameters(res: DSAResult, tasks: list[str]) -> list[str]:
    rule = rule_defaults()
    rows = [
        "| task | networks | n_delays x interval | rank | wall time | CPU time | rank check: "
        "rank, wall, CPU |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for task in tasks:
        d = res.matrices.get(task)
        p = res.params.get(task)
        if d is None or not p:
            rows.append(
                f"| {task} | - | - | - | - | not computed: {_esc(res.errors.get(task, '?'))} | - |"
            )
            continue
        rows.append(
            f"| {task} | {d.sizes['network']} | {p['n_delays']} x {p['delay_interval']} | "
            f"{p['rank']} | {res.seconds.get(task, 0.0):.1f} s | "
            f"{res.cpu_seconds.get(task, 0.0):.1f} s | {_check_cell(res, task, task)} |"
        )
    if res.trained_untrained is not None:
        rows.append(
            f"| cdi, trained + untrained Vanilla (Fig. 4) | "
            f"{res.trained_untrained.sizes['network']} | as cdi | as cdi | "
            f"{res.seconds.get('trained-untrained', 0.0):.1f} s | "
            f"{res.cpu_seconds.get('trained-untrained', 0.0):.1f} s | "
            f"{_check_cell(res, 'cdi', 'trained-untrained')} |"
        )
    return [
        *rows,
        "",
        f"*Parameters:* rnnzoo-metrics' rule for a zoo (`rnnzoo_metrics.dsa.zoo_parameters`"
        f"): the delays span {WINDOW:.0%} of the trial, at most {MAX_DELAYS} of them (longer "
        f"trials space them by the interval shown); the rank is the median, over a seeded "
        f"sample of {SAMPLE} trained networks, of the smallest rank holding "
        f"{rule['variance']:.0%} of the delay embedding's energy (at most {rule['max_rank']}); "
        "HAVOK DMD operators compared by the angular Procrustes distance over vector fields "
        f"(rnnzoo-metrics' `dsa` defaults), {_search_text(res.search)} Wall times "
        "are pessimistic on a shared machine; CPU time is this process's (tiles computed on "
        "Dask workers are not in it).",
        "",
    ]


def _search_text(search: str) -> str:
    """The sentence on the Procrustes search of the section's matrices."""
    check = f"the rank check's with `{CHECK_SEARCH}`"
    if search == DEFAULT_SEARCH:
        return (
            f"optimised by the default `{search}` search (never worse than `dsa-metric`'s "
            f"optimum on every demo-zoo pair compared; docs/benchmarks.md); {check}."
        )
    return (
        f"optimised by the `{search}` search (`--dsa-search {search}`: ~10-20x cheaper than "
        f"the default `{DEFAULT_SEARCH}`, it ends in a worse local optimum than `dsa-metric` "
        "in a share of pairs, by up to ~1e-2 rad; docs/benchmarks.md has how often and "
        f"whether it changed the demo zoo's answers); {check}."
    )


def _check_cell(res: DSAResult, task: str, name: str) -> str:
    p = res.check_params.get(task)
    name = f"{name}{CHECK_SUFFIX}"
    if not p or name not in res.seconds:
        return _esc(res.errors.get(name, "not run"))
    return (
        f"{p['rank']}, {res.seconds.get(name, 0.0):.1f} s, {res.cpu_seconds.get(name, 0.0):.1f} s"
    )


def _cluster_table(res: DSAResult) -> list[str]:
    qs = [q for q in res.questions if "/cluster/" in q.key]
    if not qs:
        return []
    shown = [
        k
        for k in COMPARED
        if any((k, b) in t for t in res.excess.values() for b in ("arch", "activation"))
    ]
    head = [
        "task",
        "label",
        "DSA",
        *[DISTANCES[k].title for k in shown],
        f"DSA, rank check ({CHECK_VARIANCE:.0%})",
        "answer",
    ]
    lines = [
        "**(a) Does DSA cluster by architecture and activation, like geometry, or not, like "
        "topology?** Silhouette of the label groups in excess of its chance level (within the "
        "other factor, as for the paper's distances), with the permutation p-value:",
        "",
        "| " + " | ".join(head) + " |",
        "| " + " | ".join("---" for _ in head) + " |",
    ]
    for q in qs:
        _, task, _, by = q.key.split("/")
        table = res.excess.get(task, {})
        cells = [task, "architecture" if by == "arch" else "activation"]
        for k in (KEY, *shown):
            e, p = table.get((k, by), (math.nan, math.nan))
            cells.append(f"{_num(e)} ({_p(p)})" if math.isfinite(e) else "n/a")
        n = q.numbers
        if "rank_check_excess" in n:
            cells.append(
                f"{_num(n['rank_check_excess'])} ({_p(n['rank_check_p_value'])}) at rank "
                f"{int(n['rank_check_rank'])}: {q.rank_check['answer']}"
            )
        else:
            cells.append("n/a")
        cells.append(_esc(answer_text(q)))
        lines.append("| " + " | ".join(cells) + " |")
    return [
        *lines,
        "",
        f"*Rule (a):* {RULE_CLUSTER}.",
        "",
    ]


def _trained_table(res: DSAResult) -> list[str]:
    qs = [q for q in res.questions if q.key.endswith("trained-untrained")]
    if not qs:
        return []
    q = qs[0]
    n = q.numbers
    lines = [
        "**(b) Does DSA put trained relu networks closer to trained tanh networks than to "
        "untrained relu ones** (the opposite of SVCCA in Fig. 4)?",
        "",
        "| distance from trained relu Vanilla networks to | untrained relu | trained tanh | "
        "untrained tanh |",
        "| --- | --- | --- | --- |",
    ]
    check = f"DSA, rank check (rank {int(n['rank_check_rank'])})" if "rank_check_rank" in n else ""
    for name, prefix in (("DSA", "dsa"), (check, "rank_check_dsa"), ("SVCCA (Fig. 4)", "svcca")):
        if not name:
            continue
        vals = [
            n.get(f"{prefix}_trained_relu_{g}", math.nan)
            for g in ("untrained_relu", "trained_tanh", "untrained_tanh")
        ]
        if all(not math.isfinite(v) for v in vals):
            continue
        lines.append(f"| {name} | " + " | ".join(_num(v, ".3f") for v in vals) + " |")
    lines += [
        "",
        f"Answer: {_esc(answer_text(q))}. {_esc(q.result)}.",
        "",
        f"*Rule (b):* {RULE_TRAINED}.",
        "",
    ]
    return lines


def _undecided(res: DSAResult) -> list[str]:
    open_ = [
        q for q in res.questions if q.firmness and (not q.firmness["firm"] or _rank_changed(q))
    ]
    if not open_:
        return []
    lines = [
        "Not decided at this zoo size: the answer on this zoo alone, the share of resamples "
        "giving each answer, and the networks per cell type estimated to decide it:",
        "",
        "| question | this zoo alone | resamples giving each answer | effect [95% CI] | "
        "networks per cell type to decide |",
        "| --- | --- | --- | --- | --- |",
    ]
    for q in open_:
        f = q.firmness
        first, second = q.answers[stats.AGREES], q.answers[stats.DIFFERS]
        need = f.get("networks_needed")
        if _rank_changed(q):
            need_text = f"not a matter of zoo size: at rank {q.rank_check['rank']} the answer is "
            need_text += q.rank_check["answer"]
        elif need is not None:
            need_text = f"~{int(need)} (this zoo: {f['n_per_cell']:g})"
        elif "networks_needed" in f and f["min_cell"] >= 2:
            need_text = f"more than {firm.MAX_NEEDED:,}"
        else:
            need_text = "not estimable"
        lines.append(
            f"| `{q.key}` | {q.point_answer} | {first} {f['agrees']:.0%} / {second} "
            f"{f['differs']:.0%} | {_esc(firm.effect_text(f)) or 'n/a'} | {need_text} |"
        )
    return [*lines, ""]


def report_section(res: DSAResult | None, tasks: list[str], figures: set[str]) -> list[str]:
    """The section's Markdown lines (empty when the step did not run).

    ``figures``: names of the figures written (the section shows :data:`FIGURE` inline).
    """
    if res is None:
        return []
    answers = [q.answer for q in res.questions]
    counts = ", ".join(
        f"{sum(a == w for a in answers)} {w}"
        for w in (*ANSWERS["cluster"].values(), *ANSWERS["trained-untrained"].values(), UNDECIDED)
        if any(a == w for a in answers)
    )
    lines = [
        TITLE,
        "",
        "New questions, not the paper's claims: the paper finds representational geometry "
        "(SVCCA, CKA) individual (it clusters by architecture and activation) and fixed-point "
        "topology universal (it does not). Dynamical Similarity Analysis (Ostrow, Eisen, "
        "Kozachkov & Fiete, NeurIPS 2023) compares the dynamics themselves, without fixed "
        "points: where does it stand? The answers are given in the questions' own words "
        f"(*{LIKE_GEOMETRY}* / *{LIKE_TOPOLOGY}*; *{ANSWERS['trained-untrained'][stats.AGREES]}"
        f"* / *{ANSWERS['trained-untrained'][stats.DIFFERS]}*), each decided by the rule under "
        f"its table and kept only when firm; otherwise *{UNDECIDED}*.",
        "",
        f"{len(res.questions)} questions: {counts or 'none computable'}.",
        "",
        *_parameters(res, tasks),
    ]
    if FIGURE in figures:
        lines += [f"![{FIGURE}]({FIGURE})", "", CAPTION, ""]
    lines += _cluster_table(res)
    lines += _trained_table(res)
    if any(q.firmness for q in res.questions):
        lines += [f"*Firmness:* {RULE_FIRM}.", ""]
    if any(q.rank_check for q in res.questions):
        lines += [f"*Rank check:* {RULE_RANK}.", ""]
    lines += _undecided(res)
    not_computable = [q for q in res.questions if not q.numbers]
    for q in not_computable:
        lines.append(f"- `{q.key}`: {_esc(q.result)}")
    if not_computable:
        lines.append("")
    lines += [
        "Every question with its numbers is in `dynamical_similarity.json`; the DSA matrices "
        f"and embeddings are stored beside the zoo (`paper-distance-{stored_name(KEY, res.search)}`"
        f", `paper-distance-{stored_name(FIG4_KEY, res.search)}`, `paper-embedding-dsa*`).",
        "",
    ]
    return lines


def section_of(ctx: Any, result: Any) -> list[str]:
    """The section for a pipeline run (``ctx.dsa`` from the dynamical-similarity step)."""
    return report_section(
        getattr(ctx, "dsa", None),
        list(getattr(result, "tasks", [])),
        {p.name for p in getattr(result, "figures", [])},
    )
