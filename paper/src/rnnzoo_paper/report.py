"""``report.md``: the figures inline, every finding next to the paper's statement, timings."""

from __future__ import annotations

import datetime as _dt
import os
import platform
from collections import Counter
from pathlib import Path
from typing import Any

from . import firmness as firm
from . import stats
from .dsa_report import section_of as dsa_section
from .dynamical_similarity import FIGURE as DSA_FIGURE
from .figures import figure_list
from .findings import Finding

TOPICS = (
    ("training", "Training (Appendix C)"),
    ("clustering", "Geometry and topology: clustering by architecture and activation"),
    ("fixed points", "Fixed points"),
    ("linearised dynamics", "Linearised dynamics"),
    ("trained vs untrained", "Trained vs untrained networks (Fig. 4)"),
    ("CKA vs SVCCA", "CKA vs SVCCA (Appendix E)"),
)
BADGE = {
    stats.AGREES: "✅ agrees",
    stats.DIFFERS: "❌ differs",
    stats.INCONCLUSIVE: "❔ inconclusive",
}


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for dist in ("rnnzoo-train", "rnnzoo-dynamics", "rnnzoo-metrics", "rnnzoo-paper"):
        try:
            parts.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:  # pragma: no cover - all four are installed together
            parts.append(f"{dist} (not installed)")
    return ", ".join(parts)


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _zoo_section(zoo, tasks: list[str]) -> list[str]:
    attrs = zoo.attrs
    lines = [
        "## The zoo",
        "",
        f"- location: `{zoo.location}` (schema {zoo.schema_version}; "
        f"preset `{attrs.get('preset', '?')}`; created {attrs.get('created', '?')})",
    ]
    rows = [
        "| task | networks | ok | diverged | other | cell types | seeds |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    departures: list[str] = []
    for task in tasks:
        df = zoo.index(task)
        status = df["status"].astype(str)
        cells = sorted({f"{a}-{b}" for a, b in zip(df["arch"], df["activation"], strict=True)})
        rows.append(
            f"| {task} | {len(df)} | {int((status == 'ok').sum())} | "
            f"{int((status == 'diverged').sum())} | {int((~status.isin(['ok', 'diverged'])).sum())}"
            f" | {len(cells)} | {df['seed'].nunique()} |"
        )
        try:
            plan = zoo.plan(task)
            for d in plan.metadata.get("departures_from_paper", []):
                if d not in departures:
                    departures.append(d)
        except (KeyError, ValueError):  # a zoo written without a plan: nothing to list
            pass
    lines += ["", *rows, ""]
    if departures:
        lines += ["Departures from the paper recorded in the zoo:", ""]
        lines += [f"- {d}" for d in departures]
        lines.append("")
    return lines


def _summary(findings: list[Finding]) -> list[str]:
    counts = Counter(f.verdict for f in findings)
    return [
        "## Verdicts at a glance",
        "",
        f"{len(findings)} findings: **{counts.get(stats.AGREES, 0)} agree**, "
        f"**{counts.get(stats.DIFFERS, 0)} differ**, "
        f"**{counts.get(stats.INCONCLUSIVE, 0)} inconclusive at this zoo size** "
        "(rules below each table; with few seeds per cell type most tests cannot reach "
        "significance, which the report says rather than guessing).",
        "",
        *_firmness_summary(findings),
    ]


def _firmness_summary(findings: list[Finding]) -> list[str]:
    """How many verdicts of the zoo itself were firm, and what the resampling cost."""
    assessed = [f for f in findings if f.firmness]
    if not assessed:
        return []
    from .findings import LAST_FIRMNESS_SECONDS

    decided = [f for f in assessed if f.point_verdict in (stats.AGREES, stats.DIFFERS)]
    reversed_ = [f for f in decided if not f.firmness["firm"]]
    point = Counter(f.point_verdict for f in findings)
    return [
        "Each verdict is decided with its uncertainty over the networks: the finding is "
        f"recomputed on {firm.N_RESAMPLES} bootstrap resamples of the networks within each "
        f"cell type, and *agrees* or *differs* stands only when at least {firm.FIRM:.0%} of "
        f"them give it. On this zoo alone the rules give {point.get(stats.AGREES, 0)} agree / "
        f"{point.get(stats.DIFFERS, 0)} differ / {point.get(stats.INCONCLUSIVE, 0)} "
        f"inconclusive; {len(reversed_)} of those {len(decided)} decided verdicts are not firm "
        "(another zoo of the same size could reverse them) and are reported as inconclusive "
        "with the way they lean and the networks per cell type that would decide them "
        f"(*Not decided at this zoo size*). Resampling took {LAST_FIRMNESS_SECONDS:.1f} s.",
        "",
    ]


def _verdict_cell(f: Finding) -> str:
    """The verdict badge with its firmness (``firm: 99% of 1000 resamples``)."""
    if not f.firmness:
        return BADGE[f.verdict]
    return f"{BADGE[f.verdict]} ({_escape(firm.describe(f.firmness))})"


def _cluster_table(findings: list[Finding]) -> list[str]:
    cells: dict[tuple[str, str], dict[str, Finding]] = {}
    for f in findings:
        if f.topic != "clustering":
            continue
        _, task, dist, by = f.key.split("/")
        cells.setdefault((task, dist), {})[by] = f
    if not cells:
        return []
    out = [
        "Silhouette of the label groups on each distance matrix, computed within the other "
        "factor (architecture among networks of one activation, activation among networks of "
        "one architecture), with its chance level and a permutation p-value (labels permuted "
        "within the other factor):",
        "",
        "| task | distance | by architecture | verdict | by activation | verdict |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for (task, dist), by in cells.items():
        row = [task, dist]
        for label in ("arch", "activation"):
            f = by.get(label)
            if f is None or not f.numbers:
                row += ["n/a", BADGE.get(f.verdict, "") if f else ""]
                continue
            n = f.numbers
            row += [
                f"{n['silhouette']:+.2f} vs {n['chance_silhouette']:+.2f} by chance "
                f"(p={n['p_value']:.3f}, n={int(n['n_networks'])})",
                _verdict_cell(f),
            ]
        out.append("| " + " | ".join(row) + " |")
    return [*out, ""]


def _findings_table(findings: list[Finding]) -> list[str]:
    out = ["| the paper | this zoo | verdict |", "| --- | --- | --- |"]
    for f in findings:
        out.append(f"| {_escape(f.claim)} | {_escape(f.result)} | {_verdict_cell(f)} |")
    rules = list(dict.fromkeys(f.rule for f in findings))
    if any(f.firmness for f in findings):
        rules.append(firm.RULE)
    out += ["", *[f"*Rule:* {r}." for r in rules], ""]
    return out


def _undecided(findings: list[Finding]) -> list[str]:
    """Findings that are not firm: their lean and the zoo size that would decide them."""
    open_ = [f for f in findings if f.firmness and not f.firmness["firm"]]
    if not open_:
        return []
    lines = [
        "### Not decided at this zoo size",
        "",
        "Findings whose verdict is not firm: the verdict on this zoo alone, the share of "
        "resamples on each side, the effect with its 95% interval, and the networks per cell "
        "type estimated to decide them (from the effect and its bootstrap spread on this zoo; "
        "method per line). A zoo with that many seeds per configuration (`--config`) decides "
        "them.",
        "",
        "| finding | this zoo alone | resamples: agrees / differs | effect [95% CI] | "
        "networks per cell type to decide | method |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for f in open_:
        fm = f.firmness
        need = fm.get("networks_needed")
        if need is not None:
            need_text = f"~{int(need)} (this zoo: {fm['n_per_cell']:g})"
        elif "networks_needed" in fm and fm["min_cell"] >= 2:
            need_text = f"more than {firm.MAX_NEEDED:,}"
        else:
            need_text = "not estimable"
        lines.append(
            f"| `{f.key}` | {f.point_verdict} | {fm['agrees']:.0%} / {fm['differs']:.0%} | "
            f"{_escape(firm.effect_text(fm)) or 'n/a'} | {need_text} | "
            f"{_escape(fm.get('needed_method', ''))} |"
        )
    return [*lines, ""]


def _differences(findings: list[Finding], zoo) -> list[str]:
    """One line per finding that differs: the zoo's size against the paper's, and facts."""
    from .caveats import explain

    differ = [f for f in findings if f.verdict == stats.DIFFERS]
    if not differ:
        return []
    lines = [
        "### Why findings may differ from the paper here",
        "",
        "Plausible reasons, computed from the zoo (its plan against rnnzoo-train's `paper` "
        "preset) and from the analysis behind each finding. They explain, they do not "
        "excuse: a larger zoo (`--config` with more seeds, units and iterations, or `--zoo` "
        "on a `paper`-preset zoo) decides.",
        "",
    ]
    for f in differ:
        why = explain(f, zoo)
        if why:
            lines.append(f"- `{f.key}`: {why}.")
    return [*lines, ""]


def _timings(result: Any, total: float) -> list[str]:
    lines = ["## Timings", "", "| step | wall time | what |", "| --- | --- | --- |"]
    for s in result.steps:
        lines.append(f"| {s.name} | {s.seconds:.1f} s | {_escape(s.summary)} |")
    lines.append(f"| **total** (this command) | **{total:.1f} s** | |")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines += [
        "",
        f"Machine: {os.cpu_count()} CPU core(s), {platform.system()} {platform.machine()}, "
        f"load average {load:.1f} at the end of the run (a load above the core count means "
        "other work shared the cores, so these times are pessimistic). `nox -s demo` adds the "
        "installation of a fresh environment to this total.",
        "",
    ]
    return lines


def write_report(result: Any, zoo, ctx: Any, total_seconds: float) -> Path:
    """Write ``<out>/report.md`` and return its path."""
    findings: list[Finding] = list(result.findings)
    out: Path = result.out
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    lines = [
        "# Universality and individuality in neural dynamics: reproduction report",
        "",
        "Maheswaranathan, Williams, Golub, Ganguli & Sussillo (NeurIPS 2019), recomputed by "
        f"rnnzoo on {now} ({_versions()}). Every number below is computed from the zoo and its "
        "stored analyses; each finding stands next to the paper's statement with a verdict "
        "decided by the rule printed under its table.",
        "",
        *_zoo_section(zoo, result.tasks),
        *_summary(findings),
    ]
    written = {p.name for p in result.figures}
    lines += ["## Figures", ""]
    for name, _draw, caption, task in figure_list():
        if name == DSA_FIGURE:  # shown in its own section, beside its questions
            continue
        if name in written:
            lines += [f"![{name}]({name})", "", caption, ""]
        elif task is not None and task not in result.tasks:
            lines += [f"*{name} needs the {task} task, which this run did not include.*", ""]
        else:
            lines += [f"*{name} was not drawn (see the errors below).*", ""]
    if result.figure_errors:
        lines += ["Figure errors:", ""] + [f"- `{e}`" for e in result.figure_errors] + [""]
    lines += ["## Findings", ""]
    for topic, title in TOPICS:
        group = [f for f in findings if f.topic == topic]
        if not group:
            continue
        lines += [f"### {title}", ""]
        if topic == "clustering":
            lines += _cluster_table(group)
        lines += _findings_table(group)
    lines += _differences(findings, zoo)
    lines += _undecided(findings)
    lines += dsa_section(ctx, result)
    lines += _timings(result, total_seconds)
    lines += [
        "## Files",
        "",
        f"- `findings.json`: every finding with its numbers; figures `*.png` in `{out}`.",
        f"- zoo and analyses: `{result.zoo_location}` (distance matrices and embeddings under "
        "`/<task>/analysis/paper-*`, dynamics results under `/<task>/analysis/`).",
        "",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
