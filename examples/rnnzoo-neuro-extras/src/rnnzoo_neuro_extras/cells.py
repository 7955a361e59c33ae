r"""A cell type not in the paper: the minimal gated unit (MGU) of Zhou et al. (2016).

The MGU is a GRU with one gate: a single *forget* gate both resets the state inside the
candidate and mixes the candidate into the state,

.. math::

    f &= \sigma(x W_{x,f} + h W_{h,f} + b_f) \\
    c &= \mathrm{act}(x W_{x,c} + (f \odot h) W_{h,c} + b_c) \\
    h' &= (1 - f) \odot h + f \odot c

(Zhou, Wu, Zhang and Zhou, "Minimal gated unit for recurrent neural networks", 2016).

Everything rnnzoo needs to know about it is the descriptor :data:`MGU`, registered in this
package's ``pyproject.toml``::

    [project.entry-points."rnnzoo_train.cells"]
    mgu = "rnnzoo_neuro_extras.cells:MGU"

It declares no training kernel of its own, so ``rnnzoo-train generate`` trains it with the
autograd kernel (the cell's :meth:`MGUCell.step_projected` differentiated by autograd), and
no closed-form Jacobians, so rnnzoo-dynamics linearises it with autograd Jacobians of its
step (:meth:`rnnzoo_train.cells.base.Cell.jacobian_h`). Its parameters use the packed layout
of the built-in gated cells (gate blocks ``("forget", "candidate")``: ``W_x`` ``(M, 2N)``,
``W_h`` ``(N, 2N)``, ``b`` ``(2N,)``), so zoos store it like any other cell.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from rnnzoo_train.cells import Architecture
from rnnzoo_train.cells.base import Params
from rnnzoo_train.cells.packed import PackedCell

__all__ = ["MGU", "MGUCell"]


class MGUCell(PackedCell):
    """The minimal gated unit (module docstring), batched over networks and trials.

    Initialisation as the built-in gated cells: orthogonal ``W_h`` blocks (gain 1; 0.5 for
    the relu candidate, which keeps the relu branch contracting) and a forget-gate bias of
    ``-1`` (the gate starts 73% closed: the state is carried, as the GRU's update bias does).
    """

    arch: ClassVar[str] = "mgu"
    gates: ClassVar[tuple[str, ...]] = ("forget", "candidate")
    recurrent_gain: ClassVar[dict[str, dict[str, float]]] = {
        "tanh": {"forget": 1.0, "candidate": 1.0},
        "relu": {"forget": 1.0, "candidate": 0.5},
    }
    gate_bias: ClassVar[dict[str, dict[str, float]]] = {
        "tanh": {"forget": -1.0},
        "relu": {"forget": -1.0},
    }

    def step_projected(self, params: Params, h: Tensor, u: Tensor) -> Tensor:
        n = self.n_units
        u_f, u_c = self._blocks(u)
        w_h = params["W_h"]
        f = torch.sigmoid(u_f + torch.bmm(h, w_h[..., :n]))
        c = self._act(u_c + torch.bmm(f * h, w_h[..., n:]))
        return h + f * (c - h)


#: the descriptor rnnzoo reads: name, cell, packed gates, display name and colour
MGU = Architecture(
    name="mgu",
    cell=MGUCell,
    gates=MGUCell.gates,
    display_name="MGU",
    colour="#e377c2",  # tab10 pink: not used by the paper's architectures or activations
)
