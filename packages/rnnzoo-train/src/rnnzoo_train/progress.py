"""Progress of a generation run (networks done/total, ETA, current loss) and its summary table."""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

import numpy as np

from rnnzoo_train.records import NetworkResult


class Progress:
    """A progress bar over networks (tqdm), or nothing when disabled.

    The postfix shows the phase and the median final training loss of the last finished work
    unit ("current loss"); tqdm supplies done/total, rate and ETA.
    """

    def __init__(self, total: int, enabled: bool = True, file: TextIO | None = None):
        self.total = int(total)
        self.done = 0
        self._bar = None
        if enabled and total > 0:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total,
                unit="net",
                desc="training",
                file=file or sys.stderr,
                dynamic_ncols=True,
                smoothing=0.1,
            )

    def phase(self, text: str) -> None:
        if self._bar is not None:
            self._bar.set_description(text)

    def advance(self, n: int, loss: float | None = None, label: str = "") -> None:
        self.done += n
        if self._bar is not None:
            post = {}
            if label:
                post["unit"] = label
            if loss is not None and math.isfinite(loss):
                post["loss"] = f"{loss:.4g}"
            self._bar.set_postfix(post, refresh=False)
            self._bar.update(n)

    def write(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@dataclass(frozen=True)
class SummaryRow:
    """One configuration's outcome in a generation run."""

    task: str
    config: str
    ok: int
    diverged: int
    failed: int
    median_test_loss: float
    median_performance: float
    solved_fraction: float
    performance_name: str = "performance"


def summarise(
    task: str, results: Iterable[NetworkResult], performance_name: str
) -> list[SummaryRow]:
    """Per-configuration rows (ok / diverged counts, medians, solved fraction) of ``results``."""
    by_config: dict[str, list[NetworkResult]] = defaultdict(list)
    for r in results:
        by_config[r.spec.config.key].append(r)
    rows = []
    for key in sorted(by_config):
        rs = by_config[key]
        ok = [r for r in rs if r.status == "ok"]
        med = lambda xs: float(np.median(xs)) if xs else float("nan")  # noqa: E731
        rows.append(
            SummaryRow(
                task=task,
                config=key,
                ok=len(ok),
                diverged=sum(r.status == "diverged" for r in rs),
                failed=sum(r.status == "failed" for r in rs),
                median_test_loss=med([r.test_loss for r in ok]),
                median_performance=med([r.performance for r in ok]),
                solved_fraction=sum(r.solved for r in rs) / len(rs),
                performance_name=performance_name,
            )
        )
    return rows


def format_table(rows: list[SummaryRow]) -> str:
    """A plain-text table of summary rows, one line per configuration, plus a total line."""
    if not rows:
        return "(no networks trained in this run)"
    head = ("task", "configuration", "ok", "div", "median test loss", "median perf", "solved")
    lines = []
    body = [
        (
            r.task,
            r.config,
            str(r.ok),
            str(r.diverged + r.failed),
            f"{r.median_test_loss:.4g}",
            f"{r.median_performance:.4g} ({r.performance_name})",
            f"{100 * r.solved_fraction:.0f}%",
        )
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines.append(fmt.format(*head))
    lines.append("  ".join("-" * w for w in widths))
    lines += [fmt.format(*b) for b in body]
    total = sum(r.ok + r.diverged + r.failed for r in rows)
    solved = sum(r.solved_fraction * (r.ok + r.diverged + r.failed) for r in rows)
    lines.append(
        f"{total} networks: {sum(r.ok for r in rows)} ok, "
        f"{sum(r.diverged for r in rows)} diverged; {solved / total:.0%} solved their task"
    )
    return "\n".join(lines)
