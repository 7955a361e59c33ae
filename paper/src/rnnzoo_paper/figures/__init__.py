"""The paper's figures, one PNG each: Figs 1-4 and Appendix C and E.

Every figure module has ``draw(context, path) -> Path`` and a ``CAPTION``;
:func:`figure_list` gives them in report order with the task each one needs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def figure_list() -> list[tuple[str, Callable[..., Any], str, str | None]]:
    """``(file name, draw function, caption, task needed or None)``, in report order."""
    from . import appendix, dsa, fig1, fig2, fig3, fig4, overview

    return [
        ("overview.png", overview.draw, overview.CAPTION, overview.TASK),
        ("fig1.png", fig1.draw, fig1.CAPTION, fig1.TASK),
        ("fig2.png", fig2.draw, fig2.CAPTION, fig2.TASK),
        ("fig3.png", fig3.draw, fig3.CAPTION, fig3.TASK),
        ("fig4.png", fig4.draw, fig4.CAPTION, fig4.TASK),
        ("appendix_c.png", appendix.draw_losses, appendix.CAPTION_C, None),
        ("appendix_e.png", appendix.draw_cka, appendix.CAPTION_E, None),
        ("dsa.png", dsa.draw, dsa.CAPTION, dsa.TASK),  # beyond the paper: its own section
    ]
