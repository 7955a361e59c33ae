"""Your own recurrent network: any torch recurrent model as a rnnzoo :class:`Cell`.

:func:`as_network` turns a user's model into an :class:`OwnNetwork` (a cell plus the
parameters of a population of one), and :func:`analyze_model` runs every dynamics analysis
of :func:`rnnzoo_dynamics.population.analyze_population` on it.

Two kinds of model are accepted:

- ``torch.nn.RNN`` (tanh or relu), ``nn.GRU``, ``nn.LSTM`` (one layer, one direction, no
  ``proj_size``; ``batch_first`` and ``bias`` either way) and ``nn.RNNCell``,
  ``nn.GRUCell``, ``nn.LSTMCell``: the weights are taken over *exactly* into the zoo's
  vanilla / gru / lstm cells (equal to torch's, ``docs/cells-and-tasks.md``), which have
  closed-form batched Jacobians. An LSTM's state is ``concat[h, c]``; its readout sees ``h``.
- any step function ``F(h, x) -> h_next`` written in torch (an ``nn.Module`` or a callable),
  batched over a leading axis: ``h`` ``(batch, S)``, ``x`` ``(batch, M)``. It becomes a
  :class:`StepFunctionCell` whose Jacobians come from batched autograd
  (:func:`rnnzoo_train.cells.autograd.autograd_jacobians`). A module is copied, put in
  ``eval()`` mode and converted to float64 (``.double()``); where the function cannot run in
  float64 it runs in its own precision, a :class:`Float32Warning` says so, and
  :func:`analyze_model` accepts fixed points to the tolerance that precision allows
  (:func:`float32_q_tol`) instead of ``q < 1e-12``.

The readout (optional) is an ``nn.Linear`` or an affine callable of the readout state; it
becomes ``W_out``, ``b_out``. Without one the readout is the identity: the network's output
*is* its readout state (``h``), so transition-graph nodes are labelled by their rounded
state. A model that is not recurrent in this sense gets a one-line :class:`ModelError`.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import xarray as xr
from torch import Tensor, nn

from rnnzoo_train.cells import get_cell
from rnnzoo_train.cells.base import Cell, Params

__all__ = [
    "Float32Warning",
    "ModelError",
    "OwnNetwork",
    "StepFunctionCell",
    "analyze_model",
    "as_network",
    "float32_q_tol",
]

#: the torch modules taken over exactly, and the zoo architecture each becomes
EXACT = {
    nn.RNN: "vanilla",
    nn.GRU: "gru",
    nn.LSTM: "lstm",
    nn.RNNCell: "vanilla",
    nn.GRUCell: "gru",
    nn.LSTMCell: "lstm",
}

#: attributes a step-function module may carry its sizes in (first found wins)
STATE_SIZE_ATTRS = ("state_size", "hidden_size", "n_units", "hidden_dim", "n_hidden")
INPUT_SIZE_ATTRS = ("n_inputs", "input_size", "input_dim", "n_input")

#: a float32 fixed point is resolved to this many float32 ulps of the state (per unit)
FLOAT32_ULPS = 16


class ModelError(ValueError):
    """A model that cannot be analysed as a recurrent network (the message says why)."""


class Float32Warning(UserWarning):
    """The model cannot run in float64: its fixed points are resolved to float32 precision."""


# ----------------------------------------------------------------------------------------
# the step-function cell


class StepFunctionCell(Cell):
    """A :class:`Cell` around a user's step function ``F(h, x) -> h_next``.

    ``F`` is evaluated on all ``P * B`` points at once (flattened to ``(P*B, S)``), in the
    function's own ``dtype`` (states are cast to it and back). The parameters are the readout
    only (``W_out`` ``(S, K)``, ``b_out`` ``(K,)``); the readout sees the whole state
    (``n_units = S``). The Jacobians are the default of :class:`Cell`: batched autograd.

    Parameters
    ----------
    fn : callable
        ``fn(h, x)`` with ``h`` ``(batch, S)``, ``x`` ``(batch, M)``; returns ``(batch, S)``.
    state_size, n_inputs, n_outputs : int
    dtype : torch.dtype
        The precision ``fn`` runs in.
    """

    arch: ClassVar[str] = "step-function"

    def __init__(
        self, fn: Callable, state_size: int, n_inputs: int, n_outputs: int, dtype: torch.dtype
    ):
        super().__init__(state_size, n_inputs, n_outputs, "tanh")
        self.fn = fn
        self.dtype = dtype
        self._readout: Params | None = None

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"W_out": (self.n_units, self.n_outputs), "b_out": (self.n_outputs,)}

    def init_params(self, generator: torch.Generator, dtype: torch.dtype = torch.float32) -> Params:
        """The readout this cell was built with (a step function has no initialisation)."""
        if self._readout is None:
            return {
                "W_out": torch.zeros(self.n_units, self.n_outputs, dtype=dtype),
                "b_out": torch.zeros(self.n_outputs, dtype=dtype),
            }
        return {k: v.to(dtype) for k, v in self._readout.items()}

    def step(self, params: Params, h: Tensor, x: Tensor) -> Tensor:
        lead = h.shape[:-1]
        out = self.fn(
            h.reshape(-1, self.n_units).to(self.dtype), x.reshape(-1, self.n_inputs).to(self.dtype)
        )
        return out.to(h.dtype).reshape(*lead, self.n_units)

    def __repr__(self) -> str:
        return (
            f"StepFunctionCell(state_size={self.n_units}, n_inputs={self.n_inputs}, "
            f"n_outputs={self.n_outputs}, dtype={self.dtype})"
        )


# ----------------------------------------------------------------------------------------
# the user's network


@dataclass
class OwnNetwork:
    """A user's recurrent network as a rnnzoo cell and its parameters.

    Attributes
    ----------
    cell : Cell
        A zoo cell (exact conversions) or a :class:`StepFunctionCell`.
    params : dict of str to Tensor
        Parameters of a population of one (leading axis ``P = 1``), readout included.
    kind : str
        What the model was taken as, e.g. ``"nn.GRU (exact weights, closed-form Jacobians)"``
        or ``"step function (autograd Jacobians)"``.
    float64 : bool
        Whether the dynamics run in float64 (the analyses' precision). ``False`` only for a
        step function that cannot run in float64.
    readout_kind : str
        ``"nn.Linear"``, ``"affine callable"`` or ``"identity (no readout given)"``.
    state_layout : str
        What the state vector holds: ``"h"`` or ``"concat[h, c]"`` (LSTM).
    """

    cell: Cell
    params: Params
    kind: str
    float64: bool
    readout_kind: str = "identity (no readout given)"
    state_layout: str = "h"

    @property
    def n_inputs(self) -> int:
        """Input size ``M``."""
        return self.cell.n_inputs

    @property
    def n_outputs(self) -> int:
        """Readout size ``K``."""
        return self.cell.n_outputs

    @property
    def state_size(self) -> int:
        """Size ``S`` of the full state (``2 N`` for an LSTM)."""
        return self.cell.state_size

    @property
    def n_units(self) -> int:
        """Size of the readout state (``h``; the whole state of a step function)."""
        return self.cell.n_units

    def states(self, inputs: Any, h0: Any = None) -> np.ndarray:
        """Full states ``h_1..h_T`` for ``inputs`` ``(B, T, M)``: ``(B, T, S)`` float64.

        ``h0`` ``(B, S)`` defaults to zeros (``concat[h, c] = 0`` for an LSTM).
        """
        x = self._inputs(inputs)
        dtype = torch.float64 if self.float64 else _cell_dtype(self.cell)
        params = {k: v.detach().to(dtype) for k, v in self.params.items()}
        start = None
        if h0 is not None:
            start = torch.as_tensor(np.asarray(h0), dtype=dtype)
            if start.shape != (x.shape[0], self.state_size):
                raise ModelError(
                    f"h0 must have shape ({x.shape[0]}, {self.state_size}); "
                    f"got {tuple(start.shape)}"
                )
            start = start[None]
        with torch.no_grad():
            out = self.cell.run(params, x.to(dtype)[None], start)[0]
        return out.to(torch.float64).numpy()

    def run(self, inputs: Any, h0: Any = None) -> np.ndarray:
        """Hidden states the readout sees, ``(B, T, n_units)`` float64, for ``(B, T, M)`` inputs.

        ``h`` only for an LSTM (its ``c`` is in :meth:`states`); the whole state otherwise.
        """
        return self.states(inputs, h0)[..., : self.n_units]

    def outputs(self, inputs: Any, h0: Any = None) -> np.ndarray:
        """Readout ``y_t = h_t W_out + b_out``, ``(B, T, n_outputs)`` float64."""
        h = self.run(inputs, h0)
        W = self.params["W_out"][0].detach().double().numpy()
        b = self.params["b_out"][0].detach().double().numpy()
        return h @ W + b

    def _inputs(self, inputs: Any) -> Tensor:
        x = torch.as_tensor(np.asarray(inputs, dtype=np.float64))
        if x.dim() != 3 or x.shape[-1] != self.n_inputs:
            raise ModelError(
                f"inputs must have shape (batch, time, {self.n_inputs}) for this network "
                f"({self.n_inputs} inputs); got {tuple(x.shape)}"
            )
        return x


def _cell_dtype(cell: Cell) -> torch.dtype:
    return getattr(cell, "dtype", torch.float64)


# ----------------------------------------------------------------------------------------
# conversion


def as_network(
    model: Any,
    readout: Any = None,
    *,
    n_inputs: int | None = None,
    state_size: int | None = None,
    dtype: torch.dtype = torch.float64,
) -> OwnNetwork:
    """A user's recurrent model as an :class:`OwnNetwork` the analyses accept.

    Parameters
    ----------
    model : nn.Module or callable or OwnNetwork
        ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` (one layer, unidirectional, no ``proj_size``),
        ``nn.RNNCell`` / ``nn.GRUCell`` / ``nn.LSTMCell`` (taken over exactly), or a step
        function ``F(h, x) -> h_next`` batched over a leading axis.
    readout : nn.Linear or callable, optional
        Output of the readout state (``h``): an ``nn.Linear`` or an affine callable
        ``(batch, n_units) -> (batch, K)``. Default: the identity (outputs = ``h``).
    n_inputs : int, optional
        Input size ``M`` of a step function (read from the module's ``n_inputs`` /
        ``input_size`` attributes when not given; checked against a torch module's own).
    state_size : int, optional
        State size ``S`` of a step function (default: the module's ``state_size`` /
        ``hidden_size`` / ``n_units`` attribute, or the readout's ``in_features``).
    dtype : torch.dtype
        Precision a step function is run in (float64; where it cannot run in float64 it runs
        in its own precision with a :class:`Float32Warning`). Exact conversions always
        store float64 parameters.

    Returns
    -------
    OwnNetwork

    Raises
    ------
    ModelError
        One line naming what is wrong: several layers, bidirectional, ``proj_size``, an
        unknown module, a wrong call signature, an output whose shape is not the state's,
        non-finite outputs, a readout that does not fit.
    """
    if isinstance(model, OwnNetwork):
        if readout is None:
            return model
        return _with_readout(model, readout)
    exact = _exact_arch(model)
    if exact is not None:
        return _convert_exact(model, exact, readout, n_inputs)
    if isinstance(model, nn.Module) and isinstance(model, (nn.RNNBase, nn.RNNCellBase)):
        raise ModelError(
            f"unsupported recurrent module {_name(model)}; use nn.RNN, nn.GRU, "
            "nn.LSTM, their Cell versions, or pass a step function F(h, x) -> h"
        )
    if not callable(model):
        raise ModelError(
            f"{type(model).__name__} is not a torch recurrent model: pass an nn.RNN/GRU/LSTM "
            "(or its Cell), or a step function F(h, x) -> h"
        )
    try:
        return _convert_step_function(model, readout, n_inputs, state_size, dtype)
    except ModelError as err:
        if isinstance(model, nn.Module) and type(model).__module__.startswith("torch.nn"):
            raise ModelError(
                f"unknown module type {_name(model)}: not an nn.RNN/GRU/LSTM (or Cell), and as "
                f"a step function F(h, x) -> h: {err}"
            ) from None
        raise


def _with_readout(net: OwnNetwork, readout: Any) -> OwnNetwork:
    """``net`` with its readout replaced (a new cell when the output size changes)."""
    fields = _readout_fields(readout, net.n_units, net.params["W_out"].dtype)
    out = fields.pop("params")
    K = out["W_out"].shape[-1]
    old = net.cell
    if isinstance(old, StepFunctionCell):
        cell: Cell = StepFunctionCell(old.fn, old.n_units, old.n_inputs, K, old.dtype)
        cell._readout = {k: v[0] for k, v in out.items()}
    else:
        cell = get_cell(old.arch, old.activation, old.n_units, old.n_inputs, K)
    params = {k: v for k, v in net.params.items() if k not in out} | out
    return dataclasses.replace(net, cell=cell, params=params, **fields)


def _name(model: Any) -> str:
    t = type(model)
    return f"nn.{t.__name__}" if t.__module__.startswith("torch.nn") else t.__name__


def _exact_arch(model: Any) -> str | None:
    for cls, arch in EXACT.items():
        if isinstance(model, cls):
            if type(model).forward is not cls.forward:
                raise ModelError(
                    f"{type(model).__name__} subclasses nn.{cls.__name__} with its own forward; "
                    "pass its step function F(h, x) -> h instead"
                )
            return arch
    return None


def _convert_exact(model: nn.Module, arch: str, readout: Any, n_inputs: int | None) -> OwnNetwork:
    name = _name(model)
    is_layer = isinstance(model, nn.RNNBase)
    if is_layer:
        if model.num_layers != 1:
            raise ModelError(
                f"{name} has num_layers={model.num_layers}; only one layer can be analysed "
                "(its state is one layer's h); pass one layer, or a step function of the stack"
            )
        if model.bidirectional:
            raise ModelError(
                f"{name} is bidirectional: a fixed point needs a forward-in-time "
                "recurrence; use bidirectional=False"
            )
        if getattr(model, "proj_size", 0):
            raise ModelError(
                f"{name} has proj_size={model.proj_size}: LSTMs with projections "
                "are not supported; pass a step function instead"
            )
    sfx = "_l0" if is_layer else ""
    activation = "tanh"
    if arch == "vanilla":
        activation = model.nonlinearity
        if activation not in ("tanh", "relu"):  # pragma: no cover - torch allows only these
            raise ModelError(f"{name} has nonlinearity {activation!r}; use tanh or relu")
    M, N = model.input_size, model.hidden_size
    if n_inputs is not None and int(n_inputs) != M:
        raise ModelError(f"{name} takes input_size={M} inputs, not n_inputs={n_inputs}")
    f64 = torch.float64

    def weight(kind: str) -> Tensor:
        return getattr(model, f"weight_{kind}{sfx}").detach().to("cpu", f64).clone()

    def bias(kind: str, size: int) -> Tensor:
        b = getattr(model, f"bias_{kind}{sfx}", None) if model.bias else None
        return torch.zeros(size, dtype=f64) if b is None else b.detach().to("cpu", f64).clone()

    G = {"vanilla": 1, "gru": 3, "lstm": 4}[arch]
    b_ih, b_hh = bias("ih", G * N), bias("hh", G * N)
    params: Params = {"W_x": weight("ih").T.contiguous(), "W_h": weight("hh").T.contiguous()}
    if arch == "gru":  # reset after the recurrent matmul: b_hn stays separate
        params["b"] = b_ih + torch.cat([b_hh[: 2 * N], torch.zeros(N, dtype=f64)])
        params["b_hn"] = b_hh[2 * N :]
    else:
        params["b"] = b_ih + b_hh
    fields = _readout_fields(readout, N, f64)
    out = fields.pop("params")
    cell = get_cell(arch, activation, N, M, out["W_out"].shape[-1])
    params.update({k: v[0] for k, v in out.items()})
    params = {k: v[None] for k, v in params.items()}
    what = f"{name}" + ("" if activation == "tanh" else f" ({activation})")
    return OwnNetwork(
        cell=cell,
        params=params,
        kind=f"{what} (exact weights, closed-form Jacobians)",
        float64=True,
        state_layout="concat[h, c]" if arch == "lstm" else "h",
        **fields,
    )


def _readout_fields(readout: Any, n_units: int, dtype: torch.dtype) -> dict[str, Any]:
    """``params`` (``W_out`` ``(1, N, K)``, ``b_out`` ``(1, K)``) and ``readout_kind``."""
    if readout is None:
        W = torch.eye(n_units, dtype=dtype)
        b = torch.zeros(n_units, dtype=dtype)
        kind = "identity (no readout given)"
    elif isinstance(readout, nn.Linear):
        if readout.in_features != n_units:
            raise ModelError(
                f"readout nn.Linear has in_features={readout.in_features}, but the network's "
                f"readout state has {n_units} units"
            )
        W = readout.weight.detach().to("cpu", dtype).T.contiguous()
        b = (
            torch.zeros(readout.out_features, dtype=dtype)
            if readout.bias is None
            else readout.bias.detach().to("cpu", dtype).clone()
        )
        kind = "nn.Linear"
    elif callable(readout):
        W, b = _affine(readout, n_units, dtype)
        kind = "affine callable"
    else:
        raise ModelError(
            f"readout must be an nn.Linear or an affine callable, not {type(readout).__name__}"
        )
    return {"params": {"W_out": W[None], "b_out": b[None]}, "readout_kind": kind}


def _affine(readout: Callable, n_units: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """``W``, ``b`` of an affine callable, checked at random points."""
    fn = readout
    if isinstance(readout, nn.Module):
        clone = _float_copy(readout, torch.float64)[0]
        fn = readout if clone is None else clone
    probe = torch.cat([torch.zeros(1, n_units), torch.eye(n_units)]).to(torch.float64)
    try:
        with torch.no_grad():
            y = _call(fn, probe, torch.float64)
    except Exception as err:  # the user's code: any failure is a model error
        raise ModelError(
            f"readout(h) failed for h of shape (batch, {n_units}): {_one_line(err)}"
        ) from None
    if not isinstance(y, Tensor) or y.dim() != 2 or y.shape[0] != n_units + 1:
        raise ModelError(
            f"readout(h) must return a (batch, n_outputs) tensor for h (batch, {n_units}); "
            f"got {_describe(y)}"
        )
    y = y.to(torch.float64)
    b, W = y[0], y[1:] - y[0]
    test = torch.randn(8, n_units, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        got = _call(fn, test, torch.float64).to(torch.float64)
    want = test @ W + b
    if not torch.allclose(got, want, rtol=1e-5, atol=1e-5 * (1 + float(want.abs().max()))):
        raise ModelError(
            "readout is not affine (y = h W + b); pass an nn.Linear or an affine "
            "callable (the analyses use its weights)"
        )
    return W.to(dtype), b.to(dtype)


def _call(fn: Callable, h: Tensor, dtype: torch.dtype) -> Tensor:
    """Call a readout in the precision its parameters accept."""
    try:
        return fn(h.to(dtype))
    except RuntimeError:
        return fn(h.to(torch.float32))


def _float_copy(module: nn.Module, dtype: torch.dtype) -> tuple[nn.Module | None, str]:
    """A copy of ``module`` on the CPU in ``eval()`` mode, frozen, converted to ``dtype``."""
    try:
        clone = copy.deepcopy(module)
    except Exception as err:
        return None, f"cannot be copied ({_one_line(err)})"
    clone.eval()
    for p in clone.parameters():
        p.requires_grad_(False)
    try:
        clone.to("cpu", dtype)
    except Exception as err:
        return None, f"cannot be converted to {dtype} ({_one_line(err)})"
    return clone, ""


def _size(model: Any, names: tuple[str, ...]) -> int | None:
    for n in names:
        v = getattr(model, n, None)
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0:
            return int(v)
    return None


def _convert_step_function(
    model: Callable,
    readout: Any,
    n_inputs: int | None,
    state_size: int | None,
    dtype: torch.dtype,
) -> OwnNetwork:
    name = _name(model) if isinstance(model, nn.Module) else getattr(model, "__name__", "callable")
    S = state_size or _size(model, STATE_SIZE_ATTRS)
    if S is None and isinstance(readout, nn.Linear):
        S = readout.in_features
    M = n_inputs or _size(model, INPUT_SIZE_ATTRS)
    if S is None or M is None:
        missing = " and ".join(n for n, v in (("state_size=", S), ("n_inputs=", M)) if v is None)
        raise ModelError(
            f"cannot tell the sizes of step function {name}: pass {missing} to as_network "
            "(then give analyze_model the OwnNetwork), or give the module state_size / "
            "n_inputs attributes"
        )
    S, M = int(S), int(M)
    candidates: list[tuple[Callable, torch.dtype]] = []
    why_not = ""
    if isinstance(model, nn.Module):
        clone, why_not = _float_copy(model, dtype)
        if clone is not None:
            candidates.append((clone, dtype))
        own = _module_dtype(model)
        if own != dtype:
            frozen, _ = _float_copy(model, own)
            candidates.append((frozen or model, own))
    else:
        candidates.append((model, dtype))
        if dtype != torch.float32:
            candidates.append((model, torch.float32))
    first_error: ModelError | None = None
    for fn, dt in candidates:
        try:
            _check_step(fn, name, S, M, dt)
        except ModelError as err:
            first_error = first_error or err
            continue
        if dt != dtype:
            reason = why_not or (str(first_error) if first_error else "")
            warnings.warn(
                f"{name} cannot run in {str(dtype).replace('torch.', '')}"
                f"{' (' + reason + ')' if reason else ''}; it runs in "
                f"{str(dt).replace('torch.', '')}, and fixed points are resolved only to that "
                "precision (see OwnNetwork.float64 and the results' q_tol)",
                Float32Warning,
                stacklevel=3,
            )
        fields = _readout_fields(readout, S, torch.float64)
        out = fields.pop("params")
        cell = StepFunctionCell(fn, S, M, out["W_out"].shape[-1], dt)
        cell._readout = {k: v[0] for k, v in out.items()}
        return OwnNetwork(
            cell=cell,
            params=out,
            kind=f"step function {name} (autograd Jacobians)",
            float64=dt == torch.float64,
            **fields,
        )
    assert first_error is not None
    raise first_error


def _module_dtype(module: nn.Module) -> torch.dtype:
    for p in list(module.parameters()) + list(module.buffers()):
        if p.is_floating_point():
            return p.dtype
    return torch.float32


class _SignatureError(ModelError):
    """Calling the function failed (possibly only in this precision)."""


def _check_step(fn: Callable, name: str, S: int, M: int, dtype: torch.dtype) -> None:
    """Call ``fn(h, x)`` once on a small batch and check what comes back."""
    g = torch.Generator().manual_seed(0)
    h = (0.1 * torch.randn(3, S, generator=g, dtype=torch.float64)).to(dtype)
    x = (0.1 * torch.randn(3, M, generator=g, dtype=torch.float64)).to(dtype)
    try:
        with torch.no_grad():
            y = fn(h, x)
    except Exception as err:  # the user's code: any failure is a model error
        raise _SignatureError(
            f"calling {name}(h, x) with h (batch, {S}) and x (batch, {M}) failed: "
            f"{_one_line(err)}; a step function must map (h, x) to the next h"
        ) from None
    if not isinstance(y, Tensor):
        raise ModelError(
            f"{name}(h, x) returned {_describe(y)}; a step function must return the next state "
            f"as one tensor of shape (batch, {S})"
        )
    if tuple(y.shape) != (3, S):
        raise ModelError(
            f"{name}(h, x) returned shape {tuple(y.shape)} for h of shape (3, {S}); the output "
            "must have the state's shape"
        )
    if not torch.isfinite(y).all():
        raise ModelError(f"{name}(h, x) returned non-finite values for small finite h and x")
    if y.dtype != dtype:
        raise _SignatureError(f"{name}(h, x) returned {y.dtype} for {dtype} inputs")


def _describe(y: Any) -> str:
    if isinstance(y, Tensor):
        return f"a tensor of shape {tuple(y.shape)}"
    if isinstance(y, tuple):
        return f"a tuple of {len(y)}"
    return f"a {type(y).__name__}"


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


# ----------------------------------------------------------------------------------------
# analysis


def float32_q_tol(net: OwnNetwork, scale: float = 1.0) -> float:
    """The fixed-point threshold on ``q`` a float32 step function can reach.

    ``q = ½‖F(h) − h‖²`` with each component resolved to :data:`FLOAT32_ULPS` ulps of the
    state's size ``scale``: ``½ S (FLOAT32_ULPS · eps₃₂ · (1 + scale))²``.
    """
    eps = torch.finfo(torch.float32).eps
    return 0.5 * net.state_size * (FLOAT32_ULPS * eps * (1.0 + scale)) ** 2


def analyze_model(
    model: Any,
    task: Any,
    readout: Any = None,
    options: Any = None,
    network_id: str = "model",
) -> dict[str, xr.Dataset]:
    """Every dynamics analysis of :func:`analyze_population` for a user's own network.

    Parameters
    ----------
    model : nn.Module or callable or OwnNetwork
        Anything :func:`as_network` accepts.
    task : Task or str
        The task the network solves (its probe inputs seed the finder and its fixed-point
        conditions ``x*`` are used); a name is looked up with ``get_task``.
    readout : nn.Linear or callable, optional
        See :func:`as_network`. Required for ``cdi`` (its analyses read the output).
    options : AnalysisOptions, optional
    network_id : str
        The network's id in the results (``"model"``).

    Returns
    -------
    dict of str to Dataset
        As :func:`analyze_population`, for one network; every dataset's attrs also hold
        ``model_kind``, ``model_float64``, ``readout_kind``, ``state_layout`` and ``q_tol``
        (the fixed-point threshold used: ``options.finder.q_tol``, or :func:`float32_q_tol`
        for a model that cannot run in float64) and ``q_reached`` (largest ``q`` of a
        fixed point, NaN without one).

    Raises
    ------
    ModelError
        The model is not a recurrent network, or its sizes do not fit the task (the message
        names the task's input and output sizes).
    """
    from rnnzoo_dynamics.population import AnalysisOptions, analyze_population
    from rnnzoo_train.tasks import Task, get_task

    if not isinstance(task, Task):
        task = get_task(str(task))
    net = as_network(model, readout, n_inputs=None if _has_size(model) else task.n_inputs)
    if net.n_inputs != task.n_inputs:
        raise ModelError(
            f"the model takes {net.n_inputs} inputs, but task {task.name} has "
            f"{task.n_inputs} inputs and {task.n_outputs} outputs"
        )
    if net.readout_kind.startswith("identity"):
        if task.name == "cdi":
            raise ModelError(
                f"task cdi's analyses read the network's output: pass readout= (an nn.Linear "
                f"from {net.n_units} units to {task.n_outputs} outputs)"
            )
    elif net.n_outputs != task.n_outputs:
        raise ModelError(
            f"the readout has {net.n_outputs} outputs, but task {task.name} has "
            f"{task.n_inputs} inputs and {task.n_outputs} outputs"
        )
    opt = options or AnalysisOptions()
    q_tol = opt.finder.q_tol
    if not net.float64:
        probe = task.probe()
        scale = float(np.sqrt((net.states(probe.inputs) ** 2).mean(-1)).max())
        q_tol = max(q_tol, float32_q_tol(net, scale))
        finder = dataclasses.replace(
            opt.finder,
            q_tol=q_tol,
            slow_q_tol=None
            if opt.finder.slow_q_tol is None
            else max(opt.finder.slow_q_tol, 100 * q_tol),
            # a float32 residual cannot go far below q_tol (1.6 ulps here): stop there rather
            # than spend every polish step on rounding noise
            polish_q_stop=max(opt.finder.polish_q_stop, 1e-2 * q_tol),
        )
        opt = dataclasses.replace(opt, finder=finder)
    out = analyze_population(task, net.cell, net.params, [network_id], options=opt)
    q_reached = float(out["summary"]["max_q_fixed"].values[0])
    for ds in out.values():
        ds.attrs.update(
            model_kind=net.kind,
            model_float64=int(net.float64),
            readout_kind=net.readout_kind,
            state_layout=net.state_layout,
            q_tol=q_tol,
            q_reached=q_reached,
        )
    return out


def _has_size(model: Any) -> bool:
    return isinstance(model, OwnNetwork) or _exact_arch(model) is not None
