"""Small helpers for computations batched over networks ``P`` and points ``B``.

The finder freezes converged points. To avoid spending work on them, the still-active points
of every network are *packed* to the front of a ``(P', B')`` block (``P'`` networks that still
have active points, ``B'`` the largest number of active points in any of them); padding
entries repeat an active point and are never written back.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from rnnzoo_train.cells.base import Params


def params_as(params: Params, dtype: torch.dtype) -> Params:
    """A copy of ``params`` with every floating tensor cast to ``dtype`` (no autograd)."""
    return {k: v.detach().to(dtype) if v.is_floating_point() else v for k, v in params.items()}


def n_networks(params: Params) -> int:
    """Size of the population axis ``P`` of a parameter dict."""
    sizes = {v.shape[0] for v in params.values()}
    if len(sizes) != 1:
        raise ValueError(
            "parameters disagree on the population axis (first dimension): "
            f"{sorted(sizes)}; stack networks with rnnzoo_train.cells.base.stack_params"
        )
    return sizes.pop()


def select_networks(params: Params, rows: Tensor) -> Params:
    """The sub-population ``rows`` (1-D index tensor) of ``params``."""
    return {k: v.index_select(0, rows) for k, v in params.items()}


@dataclass
class Packing:
    """Where the active points of a ``(P, B)`` batch sit in a packed ``(P', B')`` block.

    Attributes
    ----------
    rows : Tensor, shape (P',)
        Networks that have at least one active point.
    cols : Tensor, shape (P', B')
        Point index (into ``B``) of each packed entry; padding repeats an active point.
    valid : Tensor, shape (P', B'), bool
        ``False`` on padding entries.
    """

    rows: Tensor
    cols: Tensor
    valid: Tensor

    @classmethod
    def from_mask(cls, active: Tensor) -> Packing:
        """Pack the ``True`` entries of ``active`` ``(P, B)``."""
        counts = active.sum(dim=1)
        rows = torch.nonzero(counts > 0).flatten()
        sub = active.index_select(0, rows)
        width = int(counts.max()) if rows.numel() else 0
        # active entries first, in their original order (stable sort on "inactive")
        order = torch.argsort((~sub).to(torch.int8), dim=1, stable=True)[:, :width]
        valid = torch.arange(width).unsqueeze(0) < counts.index_select(0, rows).unsqueeze(1)
        # padding repeats the first active point of the row (always valid data)
        cols = torch.where(valid, order, order[:, :1].expand_as(order))
        return cls(rows=rows, cols=cols, valid=valid)

    @property
    def n_active(self) -> int:
        return int(self.valid.sum())

    def gather(self, t: Tensor) -> Tensor:
        """Packed view ``(P', B', ...)`` of a per-point tensor ``t`` ``(P, B, ...)``."""
        sub = t.index_select(0, self.rows)
        idx = self.cols.reshape(*self.cols.shape, *([1] * (t.dim() - 2)))
        return torch.gather(sub, 1, idx.expand(*self.cols.shape, *t.shape[2:]))

    def scatter(self, t: Tensor, packed: Tensor) -> None:
        """Write the valid entries of ``packed`` back into ``t`` (in place)."""
        r = self.rows.unsqueeze(1).expand_as(self.cols)[self.valid]
        c = self.cols[self.valid]
        t[r, c] = packed[self.valid].to(t.dtype)
