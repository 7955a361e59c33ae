"""The paper's figures, one PNG each: Figs 1-4 and Appendix C and E.

Every figure module has ``draw(context, path) -> Path`` and a ``CAPTION``;
:func:`figure_list` gives them in report order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def figure_list() -> list[tuple[str, Callable[..., Any], str]]:
    """``(file name, draw function, caption)`` of every figure, in report order."""
    from . import appendix, fig1, fig2, fig3, fig4

    return [
        ("fig1.png", fig1.draw, fig1.CAPTION),
        ("fig2.png", fig2.draw, fig2.CAPTION),
        ("fig3.png", fig3.draw, fig3.CAPTION),
        ("fig4.png", fig4.draw, fig4.CAPTION),
        ("appendix_c.png", appendix.draw_losses, appendix.CAPTION_C),
        ("appendix_e.png", appendix.draw_cka, appendix.CAPTION_E),
    ]
