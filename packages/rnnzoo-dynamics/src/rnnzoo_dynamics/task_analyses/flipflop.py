"""The flip-flop task's dynamics (paper §3.1): fixed-point transition graphs.

Registered as ``flipflop`` under ``rnnzoo_dynamics.task_analyses``. One condition (zero
input) with up to ``3^K`` fixed points (27 for the paper's 3 bits): 1,024 initial states.
"""

from __future__ import annotations

from .transitions import TransitionGraphAnalysis


class FlipFlopAnalysis(TransitionGraphAnalysis):
    """Transition graphs of the flip-flop's ``2^K`` memories and the saddles between them."""

    name = "flipflop"
    n_starts = 1024
