"""SGD with momentum for a population: per-network learning rates, clipping, L2 and freezing.

For network ``p`` at iteration ``k`` (all quantities per network)::

    g      = grad(mse) + 2 * l2 * W                 (weights only; biases unpenalised)
    g      = g * min(1, clip / |g|)                 (|g|: global norm over all parameters)
    v      = momentum * v + g                       (heavy-ball momentum, Polyak 1964)
    theta  = theta - lr(k) * v                      (lr(k): :mod:`.schedules`)

A network whose gradient norm is not finite is *frozen*: it receives no further update (its
velocity and parameters stay as they were), the others continue.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnzoo_train.records import HyperParameters

from .losses import add_l2_gradient
from .schedules import exponential_decay


class PopulationSGD:
    """Momentum SGD over a population of ``P`` networks, each with its own hyper-parameters.

    Parameters
    ----------
    params : dict of str to Tensor
        Population parameters ``(P, ...)``, updated in place.
    hparams : list of HyperParameters
        One per network.
    l2 : sequence of float
        L2 coefficient of each network.
    iterations : int
        Length of the run (sets the learning-rate schedule).
    """

    def __init__(
        self,
        params: dict[str, Tensor],
        hparams: list[HyperParameters],
        l2: list[float],
        iterations: int,
    ):
        first = next(iter(params.values()))
        f = lambda xs: torch.tensor(xs, dtype=first.dtype, device=first.device)  # noqa: E731
        self.params = params
        self.lr0 = f([h.lr for h in hparams])
        self.decay = f([h.decay for h in hparams])
        self.momentum = f([h.momentum for h in hparams])
        self.clip = f([h.clip for h in hparams])
        self.l2 = f(list(l2))
        self.iterations = int(iterations)
        self.velocity = {k: torch.zeros_like(v) for k, v in params.items()}

    def learning_rate(self, iteration: int) -> Tensor:
        """``(P,)`` learning rates at ``iteration``."""
        return exponential_decay(self.lr0, self.decay, iteration, self.iterations)

    def step(self, grads: dict[str, Tensor], iteration: int, active: Tensor) -> Tensor:
        """Apply one update to the ``active`` networks; returns the gradient norms ``(P,)``.

        ``grads`` (the MSE gradients) are modified in place. Networks whose norm is not
        finite are left untouched; the caller marks them diverged.
        """
        P = self.lr0.shape[0]
        add_l2_gradient(grads, self.params, self.l2)
        sq = torch.zeros(P, dtype=self.lr0.dtype, device=self.lr0.device)
        for g in grads.values():
            sq += g.reshape(P, -1).square().sum(dim=1)
        norm = sq.sqrt()
        ok = active & torch.isfinite(norm)
        scale = torch.where(norm > self.clip, self.clip / norm, torch.ones_like(norm))
        scale = torch.where(ok, scale, torch.zeros_like(scale))
        lr = torch.where(ok, self.learning_rate(iteration), torch.zeros_like(scale))
        momentum = torch.where(ok, self.momentum, torch.ones_like(scale))
        all_ok = bool(ok.all())
        for name, p in self.params.items():
            g = grads[name]
            shape = (P,) + (1,) * (g.dim() - 1)
            if not all_ok:
                g[~ok] = 0.0
            v = self.velocity[name]
            v.mul_(momentum.view(shape)).add_(g.mul_(scale.view(shape)))
            p.addcmul_(lr.view(shape), v, value=-1.0)
        return norm
