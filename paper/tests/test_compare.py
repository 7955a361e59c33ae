"""``rnnzoo-paper compare-verdicts``: two runs' verdicts side by side (issue 14 §2)."""

from __future__ import annotations

import json

from rnnzoo_paper import stats
from rnnzoo_paper.cli import main
from rnnzoo_paper.compare import compare, load_findings


def _finding(key: str, verdict: str, point: str, agrees: float, differs: float) -> dict:
    firm = verdict in (stats.AGREES, stats.DIFFERS)
    return {
        "key": key,
        "verdict": verdict,
        "point_verdict": point,
        "firmness": {
            "firm": firm,
            "agrees": agrees,
            "differs": differs,
            "lean": "" if firm else (stats.AGREES if agrees >= differs else stats.DIFFERS),
        },
    }


def _write(folder, found):
    folder.mkdir()
    (folder / "findings.json").write_text(json.dumps(found))
    return folder


def test_opposite_firm_verdicts_are_flagged_and_exit_1(tmp_path, capsys):
    a = _write(
        tmp_path / "eager",
        [
            _finding("x/firm-both", stats.AGREES, stats.AGREES, 0.99, 0.01),
            _finding("x/opposite", stats.AGREES, stats.AGREES, 0.97, 0.0),
            _finding("x/borderline", stats.INCONCLUSIVE, stats.AGREES, 0.6, 0.4),
        ],
    )
    b = _write(
        tmp_path / "native",
        [
            _finding("x/firm-both", stats.AGREES, stats.AGREES, 0.98, 0.02),
            _finding("x/opposite", stats.DIFFERS, stats.DIFFERS, 0.01, 0.96),
            _finding("x/borderline", stats.INCONCLUSIVE, stats.DIFFERS, 0.45, 0.55),
        ],
    )
    rows = {r.key: r for r in compare(load_findings(a), load_findings(b))}
    assert rows["x/opposite"].opposite_firm
    assert not rows["x/firm-both"].opposite_firm
    # the zoos' own verdicts were opposite, the firm ones are not: not a violation
    assert rows["x/borderline"].point_flipped
    assert not rows["x/borderline"].opposite_firm
    assert main(["compare-verdicts", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "**opposite firm verdicts: 1** (x/opposite)" in out
    assert "| `x/opposite` | **agrees** firm (A 97% / D 0%) | **differs** firm" in out
    assert "| `x/borderline` | inconclusive, leans agrees (A 60% / D 40%)" in out
    assert "opposite before firmness" in out


def test_no_opposite_firm_verdict_exits_0(tmp_path, capsys):
    found = [_finding("x/a", stats.AGREES, stats.AGREES, 1.0, 0.0)]
    a = _write(tmp_path / "a", found)
    b = _write(tmp_path / "b", found + [_finding("x/b", stats.DIFFERS, stats.DIFFERS, 0, 1)])
    assert main(["compare-verdicts", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "**opposite firm verdicts: 0**" in out
    assert "| `x/b` | (absent) |" in out


def test_runs_without_firmness_compare_their_verdicts(tmp_path, capsys):
    """findings.json written before firmness existed: its verdicts count as they are."""
    old = [{"key": "x/a", "verdict": stats.AGREES}]
    new = [{"key": "x/a", "verdict": stats.DIFFERS}]
    assert (
        main(
            ["compare-verdicts", str(_write(tmp_path / "a", old)), str(_write(tmp_path / "b", new))]
        )
        == 1
    )
    assert "agrees (no firmness)" in capsys.readouterr().out


def _question(key: str, verdict: str, point: str, agrees: float, differs: float) -> dict:
    q = _finding(key, verdict, point, agrees, differs)
    q["answers"] = {stats.AGREES: "like geometry", stats.DIFFERS: "like topology"}
    return q


def test_the_dsa_questions_are_compared_in_their_own_words(tmp_path, capsys):
    """dynamical_similarity.json's questions (e.g. runs with --dsa-search thorough and fast)."""
    found = [_finding("x/a", stats.AGREES, stats.AGREES, 1.0, 0.0)]
    a = _write(tmp_path / "thorough", found)
    b = _write(tmp_path / "fast", found)
    undone = _question("dsa/cdi/cluster/activation", stats.INCONCLUSIVE, stats.DIFFERS, 0, 1)
    undone["firmness"]["firm"] = True  # firm, then not repeated by the rank check
    undone["firmness"]["lean"] = ""
    for folder, search, first in (
        (
            a,
            "thorough",
            _question("dsa/cdi/cluster/arch", stats.DIFFERS, stats.DIFFERS, 0.02, 0.98),
        ),
        (b, "fast", _question("dsa/cdi/cluster/arch", stats.AGREES, stats.AGREES, 0.97, 0.03)),
    ):
        (folder / "dynamical_similarity.json").write_text(
            json.dumps({"search": search, "questions": [first, undone]})
        )
    assert main(["compare-verdicts", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "**opposite firm verdicts: 1** (dsa/cdi/cluster/arch)" in out
    assert (
        "| `dsa/cdi/cluster/arch` | **like topology** firm (A 2% / D 98%) | **like geometry**"
        in out
    )
    assert "inconclusive: the rank check does not repeat like topology (A 0% / D 100%)" in out
    # the paper's findings are counted apart from the questions
    assert (
        "1 agree / 0 differ / 0 inconclusive; DSA questions: 1 inconclusive, 1 like topology" in out
    )
    # a folder without the DSA step's file compares its findings alone
    (b / "dynamical_similarity.json").unlink()
    assert main(["compare-verdicts", str(a), str(b)]) == 0
    assert "| `dsa/cdi/cluster/arch` | **like topology** firm (A 2% / D 98%) | (absent) |" in (
        capsys.readouterr().out
    )
    (b / "dynamical_similarity.json").write_text("{not json")
    assert main(["compare-verdicts", str(a), str(b)]) == 2
    assert "dynamical_similarity.json: not a DSA result file" in capsys.readouterr().err


def test_the_kept_intel_verdicts_still_load_and_compare(capsys):
    """``docs/verdicts/2026-12-07-intel-xeon`` is the Intel Xeon demo's output, kept so that
    a run on another CPU can be compared with it; this version must still read it."""
    from pathlib import Path

    kept = Path(__file__).resolve().parents[2] / "docs" / "verdicts" / "2026-12-07-intel-xeon"
    findings = load_findings(kept)
    assert sum(not f.get("answers") for f in findings.values()) == 41
    assert sum(bool(f.get("answers")) for f in findings.values()) == 7
    assert main(["compare-verdicts", str(kept), str(kept)]) == 0
    out = capsys.readouterr().out
    assert "same verdict: 48 of 48 findings and questions" in out
    assert "13 agree / 5 differ / 23 inconclusive" in out
