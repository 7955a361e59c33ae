"""The cells' names and parameter shapes, without torch.

The zoo writer, the presets and torch-free tools need these; the cells themselves
(:mod:`rnnzoo_train.cells.base` and the concrete cells) need torch. Shapes are those of
``get_cell(arch, ...).param_shapes()`` (a test checks every architecture).
"""

from __future__ import annotations

ARCHITECTURES = ("vanilla", "ugrnn", "gru", "lstm")
ACTIVATIONS = ("tanh", "relu")
#: display names used in figures and reports (paper's spelling)
DISPLAY_NAMES = {"vanilla": "Vanilla", "ugrnn": "UGRNN", "gru": "GRU", "lstm": "LSTM"}
#: number of packed gate blocks ``G`` of each architecture (``W_x`` is ``(M, G*N)``)
N_GATES = {"vanilla": 1, "ugrnn": 2, "gru": 3, "lstm": 4}


def param_shapes(
    arch: str, n_units: int, n_inputs: int, n_outputs: int
) -> dict[str, tuple[int, ...]]:
    """Shape of every parameter of one network of ``arch``, by name, in stored order.

    Raises
    ------
    ValueError
        For an unknown architecture (the message lists the valid ones).
    """
    if arch not in N_GATES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    n, m, k = int(n_units), int(n_inputs), int(n_outputs)
    gn = N_GATES[arch] * n
    shapes: dict[str, tuple[int, ...]] = {"W_x": (m, gn), "W_h": (n, gn), "b": (gn,)}
    if arch == "gru":
        shapes["b_hn"] = (n,)  # the candidate's recurrent bias (reset applied after W_h)
    shapes["W_out"] = (n, k)
    shapes["b_out"] = (k,)
    return shapes
