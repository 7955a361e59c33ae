"""One colour per architecture and per activation, as in the paper; used by every figure.

The colours and display names are the architectures' own, declared once in their
descriptors (:mod:`rnnzoo_train.cells`; a plugin's architecture brings its colour), which
rnnzoo-dynamics draws with too; rnnzoo-metrics keeps a copy (a test checks that they agree),
so a GRU is the same green in every figure of a study. Layouts follow the
paper (section 2.3): MDS plots coloured by architecture show the tanh networks, plots
coloured by activation show the Vanilla networks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rnnzoo_train.cells.architecture import FALLBACK_COLOUR
from rnnzoo_train.cells.catalog import ACTIVATIONS, ARCHITECTURES, DISPLAY_NAMES, display_name
from rnnzoo_train.cells.catalog import PALETTE as CELL_PALETTE
from rnnzoo_train.cells.catalog import colour as cell_colour

#: architecture and activation colours: the architectures' descriptors' (rnnzoo_train.cells)
PALETTE: dict[str, str] = dict(CELL_PALETTE)
#: display names of the architectures
DISPLAY: dict[str, str] = dict(DISPLAY_NAMES)
ARCH_ORDER: tuple[str, ...] = ARCHITECTURES
ACTIVATION_ORDER: tuple[str, ...] = ACTIVATIONS
#: Fig. 1e: stable black; 1, 2, 3 unstable dimensions red, green, blue
STABILITY_COLOURS: tuple[str, ...] = ("black", "tab:red", "tab:green", "tab:blue", "tab:purple")
#: the two layouts of the paper's MDS plots: (label coordinate, the subset it is drawn on)
LAYOUTS: tuple[tuple[str, str, str], ...] = (
    ("arch", "activation", "tanh"),
    ("activation", "arch", "vanilla"),
)
DPI = 130
FALLBACK = FALLBACK_COLOUR


def colour(value: Any) -> str:
    """Colour of an architecture, activation or trained/untrained label."""
    return cell_colour(value, FALLBACK)


def label(value: Any) -> str:
    """Display name of an architecture (``GRU``) or the value itself (``tanh``)."""
    return display_name(value)


def ordered(values: Any) -> list[str]:
    """Distinct values in the paper's order (architectures, then activations, then others)."""
    seen = [str(v) for v in dict.fromkeys(np.asarray(values).ravel().tolist())]
    rank = {v: i for i, v in enumerate((*ARCH_ORDER, *ACTIVATION_ORDER, "trained", "untrained"))}
    return sorted(seen, key=lambda v: (rank.get(v, len(rank)), v))


def cell_label(arch: str, activation: str) -> str:
    """``GRU tanh``."""
    return f"{label(arch)} {activation}"


def new_figure(width: float, height: float):
    """A matplotlib Figure (no pyplot state, so figures are safe in worker threads)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def panel_letter(ax: Any, letter: str) -> None:
    """The paper's bold panel letter in the top-left corner of ``ax``."""
    text = getattr(ax, "text2D", ax.text)  # 3-D axes place 2-D text with text2D
    text(
        -0.02,
        1.02,
        letter,
        transform=ax.transAxes,
        fontsize=13,
        fontweight="bold",
        ha="right",
        va="bottom",
    )


def empty_panel(ax: Any, message: str) -> None:
    """A panel that says why it has nothing to draw (e.g. no relu networks in this zoo)."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(
        0.5,
        0.5,
        message,
        ha="center",
        va="center",
        wrap=True,
        fontsize=9,
        color="0.3",
        transform=ax.transAxes,
    )


def save(fig: Any, path: str | Path) -> Path:
    """Write ``fig`` as PNG and return the path."""
    path = Path(path)
    fig.savefig(path, dpi=DPI)
    return path
