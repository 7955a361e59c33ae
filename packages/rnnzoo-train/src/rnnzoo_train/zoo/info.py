"""``info``: a summary of a zoo (networks per configuration, status, losses, versions).

``info`` reads the index and the search table (a missing or corrupt chunk there raises
:class:`~rnnzoo_train.zoo.errors.ZooIntegrityError`) and checks, cheaply, that every chunk of
every ``ok`` network exists: one ``stat`` per chunk in a directory, a name lookup in a zip
(~0.1 s for the 40,000 chunks of a ``paper`` task). A network whose chunks are missing is
counted ``damaged``, not ``ok``. It does not read the chunks (that is ``verify``'s full
check) and checks nothing per network over HTTP, where each check would be a request.
"""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rnnzoo_train.records import STATUSES

from . import layout
from .reader import Zoo
from .store import chunk_key, is_url, is_zip

#: the status ``info`` gives an ``ok`` network whose chunks are missing
DAMAGED = "damaged"


def _quantiles(values: pd.Series) -> dict[str, float] | None:
    v = values[np.isfinite(values.astype(float))]
    if v.empty:
        return None
    q = np.quantile(v.astype(float), [0.0, 0.25, 0.5, 0.75, 1.0])
    return dict(zip(("min", "q25", "median", "q75", "max"), map(float, q), strict=True))


def _disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def zoo_summary(zoo: Zoo) -> dict[str, Any]:
    """Everything ``rnnzoo-train info`` prints, as plain data (JSON-serialisable)."""
    out: dict[str, Any] = {
        "location": zoo.location,
        "schema_version": zoo.schema_version,
        "generator": zoo.attrs.get("rnnzoo_generator", {}),
        "preset": zoo.attrs.get("preset"),
        "created": zoo.attrs.get("created"),
        "tasks": {},
    }
    local = Path(zoo.location)
    for task in zoo.tasks:
        index = zoo.index(task)
        damaged = damaged_networks(zoo, task)
        if damaged:
            index.loc[damaged, "status"] = DAMAGED
        ok = index[index["status"] == "ok"]
        attrs = zoo.task_attrs(task)
        configs = []
        for key, rows in index.groupby("config", sort=False):
            done = rows[rows["status"] == "ok"]
            configs.append(
                {
                    "config": key,
                    "networks": len(rows),
                    **{s: int((rows["status"] == s).sum()) for s in ("ok", "diverged", "failed")},
                    "pending": int((rows["status"] == "pending").sum()),
                    "median_test_loss": _median(done["test_loss"]),
                    "median_performance": _median(done["performance"]),
                    "solved": float(done["solved"].mean()) if len(done) else None,
                }
            )
        info: dict[str, Any] = {
            "networks": len(index),
            "status": {str(k): int(v) for k, v in index["status"].value_counts().items()},
            "configurations": configs,
            "test_loss": _quantiles(ok["test_loss"]),
            "train_loss": _quantiles(ok["train_loss"]),
            "performance_name": attrs.get("performance_name"),
            "performance": _quantiles(ok["performance"]),
            "solved": float(ok["solved"].mean()) if len(ok) else None,
            "search_trials": int((zoo.search(task)["status"] != "pending").sum()),
            "analyses": zoo.analyses(task),
            "chunks_checked": damaged is not None,
            "damaged": damaged or [],
        }
        if local.is_dir() and (local / task).is_dir():
            info["bytes"] = _disk_bytes(local / task)
        out["tasks"][task] = info
    return out


def damaged_networks(zoo: Zoo, task: str) -> list[str] | None:
    """``ok`` networks of ``task`` with a missing chunk (``None``: not checked, over HTTP)."""
    src = zoo._task_source[task]
    present = _presence(src.location)
    if present is None:
        return None
    index = zoo._index(task)
    ok = index[index["status"] == "ok"]
    if ok.empty:
        return []
    slots = layout.network_slots(zoo.plan(task))
    root = src.root
    out = []
    for group in dict.fromkeys(ok["group"]):
        node = root[layout.group_path(task, group)]
        per_network = [
            a
            for _, a in node.arrays()
            if (a.metadata.dimension_names or ("",))[0] == "network"
            and a.metadata.chunk_grid.chunk_shape[0] == 1
        ]
        for nid in ok.index[ok["group"] == group]:
            row = slots[nid].group_row if nid in slots else None
            if row is None or any(
                not present(chunk_key(a, (row,) + (0,) * (a.ndim - 1))) for a in per_network
            ):
                out.append(str(nid))
    return out


def _presence(location: str) -> Callable[[str], bool] | None:
    """Whether a key is stored, answered without reading (``None`` over HTTP)."""
    if is_url(location):
        return None
    if is_zip(location):
        with zipfile.ZipFile(location) as zf:
            names = set(zf.namelist())
        return names.__contains__
    base = str(Path(location.removeprefix("file://")))
    return lambda key: os.path.isfile(os.path.join(base, key))


def _median(values: pd.Series) -> float | None:
    v = values.astype(float)
    v = v[np.isfinite(v)]
    return float(v.median()) if len(v) else None


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}g}"


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def format_summary(summary: dict[str, Any]) -> str:
    """The text ``rnnzoo-train info`` prints."""
    gen = summary["generator"]
    lines = [
        f"zoo {summary['location']}",
        f"  schema {summary['schema_version']}; preset {summary['preset']}; "
        f"created {summary['created']}",
        "  generated with " + ", ".join(f"{k} {v}" for k, v in gen.items()),
    ]
    for task, info in summary["tasks"].items():
        counts = info["status"]
        status = ", ".join(f"{counts[s]} {s}" for s in (*STATUSES, DAMAGED) if counts.get(s))
        size = f", {_bytes(info['bytes'])} on disk" if "bytes" in info else ""
        lines += ["", f"{task}: {info['networks']} networks ({status}){size}"]
        perf = info["performance_name"] or "performance"
        header = (
            f"  {'configuration':<28} {'n':>4} {'ok':>4} {'div':>4} {'fail':>4} {'pend':>4}"
            f" {'median test loss':>17} {'median ' + perf:>22} {'solved':>7}"
        )
        lines += [header, "  " + "-" * (len(header) - 2)]
        for c in info["configurations"]:
            solved = "-" if c["solved"] is None else f"{100 * c['solved']:.0f}%"
            lines.append(
                f"  {c['config']:<28} {c['networks']:>4} {c['ok']:>4} {c['diverged']:>4}"
                f" {c['failed']:>4} {c['pending']:>4} {_fmt(c['median_test_loss']):>17}"
                f" {_fmt(c['median_performance']):>22} {solved:>7}"
            )
        for name in ("test_loss", "performance"):
            q = info[name]
            label = "test loss" if name == "test_loss" else perf
            if q is not None:
                lines.append(
                    f"  {label} of ok networks: min {_fmt(q['min'])}, quartiles "
                    f"{_fmt(q['q25'])} / {_fmt(q['median'])} / {_fmt(q['q75'])}, "
                    f"max {_fmt(q['max'])}"
                )
        if info["solved"] is not None:
            lines.append(f"  solved: {100 * info['solved']:.0f}% of ok networks")
        lines.append(
            f"  search trials recorded: {info['search_trials']}; analyses: "
            + (", ".join(info["analyses"]) or "none")
        )
        if info["damaged"]:
            shown = ", ".join(info["damaged"][:3]) + (" ..." if len(info["damaged"]) > 3 else "")
            lines.append(
                f"  DAMAGED: {len(info['damaged'])} network(s) with status ok have missing "
                f"chunks ({shown}); `rnnzoo-train verify` lists them"
            )
        elif not info["chunks_checked"]:
            lines.append("  chunks not checked over HTTP (`rnnzoo-train verify URL` reads all)")
    return "\n".join(lines)
