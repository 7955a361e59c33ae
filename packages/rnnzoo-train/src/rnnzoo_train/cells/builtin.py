"""The paper's four architectures and the colour palette every figure uses (no torch).

The colours are matplotlib's tab10 (Vanilla blue as in the paper's Fig. 3f). They are
written here only: rnnzoo-dynamics' figures and the paper's style read them through
:func:`rnnzoo_train.cells.registry.colour`. (rnnzoo-metrics, which depends on no other
rnnzoo package, keeps a copy; ``paper/tests/test_style.py`` checks that it agrees.)
"""

from __future__ import annotations

from .architecture import Architecture

_KERNELS = "rnnzoo_train.training.kernels"
_NATIVE = "rnnzoo_train.training.native"

VANILLA = Architecture(
    name="vanilla",
    cell="rnnzoo_train.cells.vanilla:VanillaCell",
    gates=("candidate",),
    display_name="Vanilla",
    colour="#1f77b4",
    eager_kernel=f"{_KERNELS}:VanillaKernel",
    native_kernel=f"{_NATIVE}:NativeVanillaKernel",
    closed_form_jacobians=True,
)
UGRNN = Architecture(
    name="ugrnn",
    cell="rnnzoo_train.cells.ugrnn:UGRNNCell",
    gates=("update", "candidate"),
    display_name="UGRNN",
    colour="#ff7f0e",
    eager_kernel=f"{_KERNELS}:UGRNNKernel",
    native_kernel=f"{_NATIVE}:NativeUGRNNKernel",
    closed_form_jacobians=True,
)
GRU = Architecture(
    name="gru",
    cell="rnnzoo_train.cells.gru:GRUCell",
    gates=("reset", "update", "candidate"),
    display_name="GRU",
    colour="#2ca02c",
    extra_params=(("b_hn", 1),),  # the candidate's recurrent bias (reset after W_h)
    eager_kernel=f"{_KERNELS}:GRUKernel",
    native_kernel=f"{_NATIVE}:NativeGRUKernel",
    closed_form_jacobians=True,
)
LSTM = Architecture(
    name="lstm",
    cell="rnnzoo_train.cells.lstm:LSTMCell",
    gates=("input", "forget", "cell", "output"),
    display_name="LSTM",
    colour="#d62728",
    state_factor=2,  # state concat[h, c]
    eager_kernel=f"{_KERNELS}:LSTMKernel",
    native_kernel=f"{_NATIVE}:NativeLSTMKernel",
    closed_form_jacobians=True,
)

#: the built-in architectures, in the paper's order
BUILTIN: dict[str, Architecture] = {a.name: a for a in (VANILLA, UGRNN, GRU, LSTM)}

ACTIVATIONS = ("tanh", "relu")
#: colours of what is not an architecture: the activations, trained and untrained weights
OTHER_COLOURS: dict[str, str] = {
    "tanh": "#9467bd",
    "relu": "#8c564b",
    "trained": "#17becf",
    "untrained": "#7f7f7f",
}
#: the whole palette of the built-ins: architectures, activations, trained/untrained
PALETTE: dict[str, str] = {**{a.name: a.colour for a in BUILTIN.values()}, **OTHER_COLOURS}
