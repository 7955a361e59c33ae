"""Range checks of numeric options: one ``ValueError`` line naming the option and its range.

The bounds of the command line's numbers are here too (no torch import: the parser uses them).
"""

from __future__ import annotations

import math
import numbers

#: most initial states per condition: 16x the largest default (flip-flop's 27 fixed points
#: are all found from 1,024). The finder holds about ten arrays of P x C x K x S float64
#: per work unit; at this bound a default unit of 4 networks of a 128-unit LSTM (S = 256)
#: with cdi's 2 conditions needs 268 MB per array, ~2.7 GB in all.
MAX_STARTS = 16_384
#: largest seed (stored in the options' JSON as a 64-bit integer)
MAX_SEED = 2**63 - 1
#: most networks per work unit: a unit is one batch of the finder, whose memory grows with
#: it (P x C x K x S float64 per array); batches gain nothing beyond a few networks
MAX_UNIT_SIZE = 64


def check_int(name: str, value: object, low: int, high: int | None = None) -> None:
    """``value`` must be an integer in ``[low, high]`` (no upper bound when ``high`` is None)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"between {low} and {high:,}"
        raise ValueError(f"{name} must be {bound}, got {value}")


def check_float(
    name: str,
    value: object,
    low: float,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """``value`` must be a finite real number in the given interval."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    v = float(value)
    too_low = v <= low if low_open else v < low
    too_high = v >= high if high_open else v > high
    if not math.isfinite(v) or too_low or too_high:
        lo = f"{'>' if low_open else '>='} {low:g}"
        hi = "" if math.isinf(high) else f" and {'<' if high_open else '<='} {high:g}"
        raise ValueError(f"{name} must be a finite number {lo}{hi}, got {value}")
