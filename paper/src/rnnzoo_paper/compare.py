"""Two runs' verdict tables side by side, to check that zoos differing in rounding agree.

``rnnzoo-paper compare-verdicts A B`` reads ``A/findings.json`` and ``B/findings.json``
(two ``rnnzoo-paper demo`` output folders, e.g. zoos trained with the ``eager`` and the
``native`` kernels), prints one Markdown table with each finding's verdict and firmness in
both runs, and flags every *opposite firm verdict*: a finding that *agrees* (firmly) in one
run and *differs* (firmly) in the other. Issue 14's rule is that two zoos of one
specification never give one. Exit status 0 when there is none, 1 when there is, 2 for a
folder that holds no findings.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from . import stats

OPPOSITE = {stats.AGREES, stats.DIFFERS}


class CompareError(ValueError):
    """A folder that holds no readable ``findings.json`` (one-line message)."""


def load_findings(folder: str | Path) -> dict[str, dict]:
    """``findings.json`` of an output folder, by finding key.

    Raises
    ------
    CompareError
        If the folder or its ``findings.json`` is missing or is not a list of findings.
    """
    folder = Path(folder)
    path = folder / "findings.json"
    if not folder.is_dir():
        raise CompareError(
            f"{folder}: no such output folder (give two rnnzoo-paper demo --out folders)"
        )
    if not path.is_file():
        raise CompareError(
            f"{folder}: no findings.json (run rnnzoo-paper demo --out {folder} first)"
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CompareError(f"{path}: not a findings file ({type(err).__name__})") from None
    if not isinstance(data, list) or not all(
        isinstance(f, dict) and isinstance(f.get("key"), str) and "verdict" in f for f in data
    ):
        raise CompareError(f"{path}: not a findings file (expected a list of findings)")
    return {f["key"]: f for f in data}


@dataclass
class Row:
    """One finding in both runs (``None`` where a run lacks it)."""

    key: str
    a: dict | None
    b: dict | None

    @property
    def opposite_firm(self) -> bool:
        """*agrees* in one run and *differs* in the other, both firm."""
        if self.a is None or self.b is None:
            return False
        va, vb = self.a["verdict"], self.b["verdict"]
        return {va, vb} == OPPOSITE and _firm(self.a) and _firm(self.b)

    @property
    def point_flipped(self) -> bool:
        """The runs' own verdicts (before firmness) are opposite."""
        if self.a is None or self.b is None:
            return False
        return {_point(self.a), _point(self.b)} == OPPOSITE


def _point(f: dict) -> str:
    return f.get("point_verdict") or f["verdict"]


def _firm(f: dict) -> bool:
    """Firm when its firmness says so; a run without firmness counts its verdicts as firm."""
    firmness = f.get("firmness") or {}
    return bool(firmness.get("firm", f["verdict"] in OPPOSITE))


def compare(a: dict[str, dict], b: dict[str, dict]) -> list[Row]:
    """Rows for every finding of either run, in ``a``'s order then ``b``'s extra ones."""
    keys = list(dict.fromkeys([*a, *b]))
    return [Row(k, a.get(k), b.get(k)) for k in keys]


def _cell(f: dict | None) -> str:
    if f is None:
        return "(absent)"
    firmness = f.get("firmness") or {}
    short = {stats.AGREES: "agrees", stats.DIFFERS: "differs", stats.INCONCLUSIVE: "inconclusive"}
    text = short.get(f["verdict"], f["verdict"])
    if not firmness:
        return f"{text} (no firmness)"
    shares = f"A {firmness['agrees']:.0%} / D {firmness['differs']:.0%}"
    if firmness.get("firm"):
        return f"**{text}** firm ({shares})"
    lean = firmness.get("lean")
    return f"{text}" + (f", leans {lean}" if lean else "") + f" ({shares})"


def _counts(findings: dict[str, dict], name: str = "verdict") -> str:
    c = Counter((f.get(name) or f["verdict"]) for f in findings.values())
    return (
        f"{c.get(stats.AGREES, 0)} agree / {c.get(stats.DIFFERS, 0)} differ / "
        f"{c.get(stats.INCONCLUSIVE, 0)} inconclusive"
    )


def table(rows: list[Row], a: dict[str, dict], b: dict[str, dict], names=("A", "B")) -> str:
    """The Markdown report: summary lines, then one row per finding."""
    opposite = [r.key for r in rows if r.opposite_firm]
    flipped = [r.key for r in rows if r.point_flipped]
    na, nb = names
    same = sum(1 for r in rows if r.a and r.b and r.a["verdict"] == r.b["verdict"])
    lines = [
        f"- {na}: {_counts(a)} (the zoo's own verdicts before firmness: "
        f"{_counts(a, 'point_verdict')})",
        f"- {nb}: {_counts(b)} (before firmness: {_counts(b, 'point_verdict')})",
        f"- same verdict: {same} of {len(rows)} findings; opposite before firmness (agrees "
        f"in one, differs in the other): {len(flipped)}; "
        f"**opposite firm verdicts: {len(opposite)}**"
        + (f" ({', '.join(opposite)})" if opposite else ""),
        "",
        f"| finding | {na} | {nb} | |",
        "| --- | --- | --- | --- |",
    ]
    for r in rows:
        flag = (
            "**OPPOSITE FIRM**"
            if r.opposite_firm
            else "opposite before firmness"
            if r.point_flipped
            else ""
        )
        lines.append(f"| `{r.key}` | {_cell(r.a)} | {_cell(r.b)} | {flag} |")
    return "\n".join(lines) + "\n"


def run(folder_a: str | Path, folder_b: str | Path) -> tuple[str, int]:
    """The table for two output folders and the number of opposite firm verdicts."""
    a, b = load_findings(folder_a), load_findings(folder_b)
    rows = compare(a, b)
    names = (f"A = {folder_a}", f"B = {folder_b}")
    return table(rows, a, b, names), sum(r.opposite_firm for r in rows)
