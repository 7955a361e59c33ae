"""Two runs' verdict tables side by side, to check that zoos differing in rounding agree.

``rnnzoo-paper compare-verdicts A B`` reads ``A/findings.json`` and ``B/findings.json``
(two ``rnnzoo-paper demo`` output folders, e.g. zoos trained with the ``eager`` and the
``native`` kernels), prints one Markdown table with each finding's verdict and firmness in
both runs, and flags every *opposite firm verdict*: a finding that *agrees* (firmly) in one
run and *differs* (firmly) in the other. Issue 14's rule is that two zoos of one
specification never give one. The questions of *Beyond the paper: dynamical similarity*
(``dynamical_similarity.json``, where a folder has it) are compared alike, in their own
answers' words (e.g. two runs with ``--dsa-search thorough`` and ``fast``). Exit status 0
when there is none, 1 when there is, 2 for a folder that holds no findings.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from . import stats

OPPOSITE = {stats.AGREES, stats.DIFFERS}
#: the dynamical-similarity step's questions (answered in their own words)
DSA_FILE = "dynamical_similarity.json"


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
    return {f["key"]: f for f in data} | _dsa_questions(folder)


def _dsa_questions(folder: Path) -> dict[str, dict]:
    """The DSA questions of ``dynamical_similarity.json``, by key (none if absent)."""
    path = folder / DSA_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CompareError(f"{path}: not a DSA result file ({type(err).__name__})") from None
    questions = data.get("questions") if isinstance(data, dict) else None
    if not isinstance(questions, list) or not all(
        isinstance(q, dict) and isinstance(q.get("key"), str) and "verdict" in q for q in questions
    ):
        raise CompareError(f"{path}: not a DSA result file (expected its questions)")
    return {q["key"]: q for q in questions}


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
    short |= f.get("answers") or {}  # a DSA question: its own answers' words
    text = short.get(f["verdict"], f["verdict"])
    if not firmness:
        return f"{text} (no firmness)"
    shares = f"A {firmness['agrees']:.0%} / D {firmness['differs']:.0%}"
    if firmness.get("firm") and f["verdict"] in OPPOSITE:
        return f"**{text}** firm ({shares})"
    if firmness.get("firm"):  # firm, then undone (a DSA question: by its rank check)
        firm_as = short.get(firmness.get("lean") or _point(f), _point(f))
        why = "the rank check does not repeat" if _is_dsa(f) else "not kept though firm as"
        return f"{text}: {why} {firm_as} ({shares})"
    lean = firmness.get("lean")
    lean = short.get(lean, lean) if lean in (f.get("answers") or {}) else lean
    return f"{text}" + (f", leans {lean}" if lean else "") + f" ({shares})"


def _counts(findings: dict[str, dict], name: str = "verdict") -> str:
    """The paper's findings by verdict (the DSA questions are counted by :func:`_answers`)."""
    c = Counter((f.get(name) or f["verdict"]) for f in findings.values() if not _is_dsa(f))
    text = (
        f"{c.get(stats.AGREES, 0)} agree / {c.get(stats.DIFFERS, 0)} differ / "
        f"{c.get(stats.INCONCLUSIVE, 0)} inconclusive"
    )
    return text + (_answers(findings) if name == "verdict" else "")


def _is_dsa(f: dict) -> bool:
    return bool(f.get("answers"))


def _answers(findings: dict[str, dict]) -> str:
    """``; DSA questions: 2 like topology, ...`` (empty where the run has none)."""
    c = Counter(
        (f["answers"].get(f["verdict"]) or "inconclusive") for f in findings.values() if _is_dsa(f)
    )
    return ("; DSA questions: " + ", ".join(f"{n} {a}" for a, n in sorted(c.items()))) if c else ""


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
        f"- same verdict: {same} of {len(rows)} findings and questions; opposite before "
        "firmness (agrees "
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
