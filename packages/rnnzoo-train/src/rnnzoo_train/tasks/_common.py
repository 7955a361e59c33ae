"""Small helpers shared by the built-in tasks: argument checks and scores."""

from __future__ import annotations

import numpy as np


def check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    """``int(value)``, or a one-line ``ValueError`` if it is not an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_number(name: str, value: object, low: float, high: float) -> float:
    """``float(value)``, or a one-line ``ValueError`` if it is outside ``[low, high]``."""
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}") from None
    if not (low <= out <= high):
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    return out


def check_outputs(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``outputs`` as float64, or a one-line ``ValueError`` if its shape is not the targets'."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.shape != targets.shape:
        raise ValueError(
            f"outputs have shape {outputs.shape} but the batch's targets have shape "
            f"{targets.shape}; pass the network outputs (batch, time, n_outputs) of this batch"
        )
    return outputs


def explained_variance(outputs: np.ndarray, targets: np.ndarray, mask: np.ndarray) -> float:
    """``1 - SS_res / SS_tot`` over the masked entries (``SS_tot`` about the targets' mean)."""
    y = targets[mask].astype(np.float64)
    res = np.sum((outputs[mask] - y) ** 2)
    tot = np.sum((y - y.mean()) ** 2)
    return float(1.0 - res / tot)
