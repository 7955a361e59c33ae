"""Find the fixed points ``h* = F(h*, x*)`` of a population of recurrent networks.

The finder works on every initial state of every network at once (networks of one cell type
and width share a batch) and has two stages:

1. **Gradient stage** (default float32): Adam on the speed ``q(h) = ½‖F(h, x*) − h‖²`` with
   per-point convergence tracking. A point leaves the stage (freezes) as soon as its
   ``q < gradient_q_stop`` or when its ``q`` stalls (less than a factor ``gradient_stall``
   improvement over ``check_every`` steps); the stage ends when no point is left.
2. **Polish** (float64): batched damped Newton steps ``δ = −(J − I)⁻¹ r`` with the cells'
   closed-form Jacobians ``J = ∂F/∂h`` (step lengths 1, ½, ¼, ⅛); where none lowers ``q``,
   a Levenberg–Marquardt step ``(AᵀA + μ I) δ = −Aᵀ r`` (``A = J − I``) with per-point
   damping ``μ``. Points freeze when ``q < polish_q_stop``, when no step lowers ``q`` any
   more, or when ``q`` has converged to a local minimum (a slow point).

Between the stages, candidates closer than ``premerge_tol`` (relative) are merged, keeping
the lowest ``q``: most of the thousand starts have already fallen onto a few dozen points,
and only one of each cluster needs polishing.

Then every candidate is classified by its final float64 ``q``: ``q < q_tol`` is a *fixed
point*; ``q_tol ≤ q < slow_q_tol`` a *slow point* (paper §2.3: "approximate fixed points,
which are not truly fixed but are nevertheless very slow"), kept separately labelled; any
other candidate is dropped (and counted). Candidates are deduplicated per network and
condition with a KD-tree, keeping the lowest ``q`` of every cluster, and a slow point next
to a fixed point is absorbed by it; no outlier removal is ever done (isolated points are
often the rare saddles). Fixed points are listed by position along a fixed generic
direction, slow points by increasing ``q``: a fixed point's ``q`` is rounding noise, and an
order by it differed between Intel and AMD CPUs (:mod:`rnnzoo_dynamics._canonical`).

All defaults are in :class:`FinderOptions` and in ``docs/dynamics.md``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

from rnnzoo_dynamics._batch import Packing, n_networks, params_as, select_networks
from rnnzoo_dynamics._canonical import position_order
from rnnzoo_dynamics._checks import check_float, check_int
from rnnzoo_train.cells.base import Cell, Params

#: labels of the ``kind`` of a reported point
FIXED, SLOW = "fixed", "slow"


@dataclass(frozen=True)
class FinderOptions:
    """Every tolerance and budget of :func:`find_fixed_points` (defaults stated here).

    Attributes
    ----------
    gradient_steps : int
        Most Adam steps a point takes in the gradient stage (200). The stage only has to
        bring candidates near a fixed point; the polish does the rest.
    learning_rate : float
        Adam step size, in state units (0.01).
    gradient_q_stop : float
        A point leaves the gradient stage once its ``q`` is below this (1e-10); float32 cannot
        resolve much smaller speeds, the float64 polish takes over.
    gradient_stall : float
        A point also leaves when its ``q`` has not dropped below ``gradient_stall`` times its
        value ``check_every`` steps earlier (0.5: less than a 2x improvement).
    check_every : int
        Steps between convergence checks and re-packing of the active points (50).
    gradient_dtype : torch.dtype
        Precision of the gradient stage (float32).
    polish_steps : int
        Most Newton / Levenberg-Marquardt iterations per point (50).
    polish_q_stop : float
        A point is converged once its float64 ``q`` is below this (1e-24).
    damping : float
        Initial Levenberg-Marquardt damping ``μ``, relative to ``‖A‖²_F / S`` (1e-3);
        divided by 10 after an accepted step, multiplied by 10 after a rejected one.
    max_damping : float
        A point whose relative damping exceeds this has stalled (no step lowers ``q``):
        it is frozen where it is (1e8).
    q_tol : float
        Fixed-point threshold on the float64 ``q`` (1e-12).
    slow_q_tol : float or None
        Slow-point threshold (1e-6); ``None`` drops every candidate with ``q ≥ q_tol``.
    dedup_tol : float
        Two fixed points of one network and condition are the same point when closer than
        ``dedup_tol * (1 + max ‖h‖)`` (1e-4, the resolution ``premerge_tol`` already sets;
        ``max ‖h‖`` over the points being compared). A tighter radius (1e-6 before) kept
        pairs 5e-5 apart on a continuum of fixed points (a relu network whose Jacobian has
        an eigenvalue of exactly 1) as two points.
    slow_dedup_tol : float
        The same for slow points (1e-3): a slow point is a minimum of ``q`` whose position
        Gauss-Newton steps pin down far less sharply than a zero of ``F(h) − h``. A slow
        point within this radius of a fixed point is absorbed by the fixed point.
    premerge_tol : float or None
        After the gradient stage, candidates of one network and condition closer than
        ``premerge_tol * (1 + max ‖h‖)`` are merged (lowest ``q`` kept) and polished once
        (1e-4; ``None`` polishes every candidate). Fixed points closer than this are not
        told apart, a resolution far finer than any task's.
    escape : float or None
        Region of interest: a candidate farther than ``escape * R`` from the centre of its
        network's initial states (``R``: the largest distance of an initial state from that
        centre) is stopped and dropped, counted as ``n_escaped`` (2.0; ``None`` disables).
        Without it, candidates drift along flat directions into saturated regions where
        ``F(h) = h`` holds to machine precision for whole sets of states (e.g. a GRU whose
        update gate is saturated at 1), far from any state the network visits.
    polish_rtol : float
        A point whose accepted step lowers ``q`` by less than ``polish_rtol * q`` has
        converged to a local minimum of ``q`` (a slow point, if ``q`` is not ~0) (1e-10).
    max_block_elements : int
        Largest number of Jacobian entries held in memory at once (2**25, 256 MiB in
        float64); the polish works through larger batches in blocks.
    """

    gradient_steps: int = 200
    learning_rate: float = 1e-2
    gradient_q_stop: float = 1e-10
    gradient_stall: float = 0.5
    check_every: int = 50
    gradient_dtype: torch.dtype = torch.float32
    polish_steps: int = 50
    polish_q_stop: float = 1e-24
    damping: float = 1e-3
    max_damping: float = 1e8
    q_tol: float = 1e-12
    slow_q_tol: float | None = 1e-6
    dedup_tol: float = 1e-4
    slow_dedup_tol: float = 1e-3
    premerge_tol: float | None = 1e-4
    escape: float | None = 2.0
    polish_rtol: float = 1e-10
    max_block_elements: int = 2**25

    def __post_init__(self) -> None:
        check_int("gradient_steps", self.gradient_steps, 0)
        check_int("polish_steps", self.polish_steps, 0)
        check_int("check_every", self.check_every, 1)
        check_int("max_block_elements", self.max_block_elements, 1)
        check_float("learning_rate", self.learning_rate, 0, low_open=True)
        check_float("gradient_q_stop", self.gradient_q_stop, 0)
        check_float("gradient_stall", self.gradient_stall, 0, 1, low_open=True)
        check_float("polish_q_stop", self.polish_q_stop, 0)
        check_float("damping", self.damping, 0, low_open=True)
        check_float("max_damping", self.max_damping, 0, low_open=True)
        check_float("q_tol", self.q_tol, 0, low_open=True)
        check_float("dedup_tol", self.dedup_tol, 0, low_open=True)
        check_float("slow_dedup_tol", self.slow_dedup_tol, 0, low_open=True)
        check_float("polish_rtol", self.polish_rtol, 0)
        for name in ("slow_q_tol", "premerge_tol", "escape"):
            if getattr(self, name) is not None:
                check_float(name, getattr(self, name), 0, low_open=True)
        if self.slow_q_tol is not None and self.slow_q_tol <= self.q_tol:
            raise ValueError(
                f"slow_q_tol ({self.slow_q_tol}) must be larger than q_tol ({self.q_tol}); "
                "use slow_q_tol=None to keep fixed points only"
            )


@dataclass
class FixedPoints:
    """Fixed (and slow) points of a population, one row per unique point.

    Attributes
    ----------
    network : ndarray of int, (n,)
        Index of the point's network in the population (axis ``P``).
    condition : ndarray of int, (n,)
        Index of the point's static input ``x*`` among the conditions.
    state : ndarray of float64, (n, S)
    q : ndarray of float64, (n,)
        Speed ``½‖F(h*, x*) − h*‖²`` in float64.
    kind : ndarray of str, (n,)
        ``"fixed"`` (``q < q_tol``) or ``"slow"``.
    n_merged : ndarray of int, (n,)
        How many of the network's initial states converged onto this point (cluster size of
        deduplication). Points merged in later (:meth:`merge`: the boundary and refinement
        passes) add no count, so a network's counts never exceed its initial states and do
        not depend on the networks that share its batch; a point found only by such a pass
        has 0.
    x_star : ndarray of float64, (n_conditions, M)
        The conditions (for a population with per-network conditions: ``(P, n_conditions, M)``).
    candidate_q : ndarray of float64, (P, n_conditions, n_starts)
        Final float64 ``q`` of every initial state (before thresholds and deduplication;
        ``inf`` for candidates that left the region of interest, see ``FinderOptions.escape``).
    stats : dict
        Per-network counts (``n_fixed``, ``n_slow``, ``n_dropped``, ``n_escaped``,
        ``n_nonfinite``, arrays
        of shape ``(P,)``) and run totals (``gradient_steps``, ``polish_steps``,
        ``gradient_seconds``, ``polish_seconds``).
    options : FinderOptions
    """

    network: np.ndarray
    condition: np.ndarray
    state: np.ndarray
    q: np.ndarray
    kind: np.ndarray
    n_merged: np.ndarray
    x_star: np.ndarray
    candidate_q: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)
    options: FinderOptions = field(default_factory=FinderOptions)

    def __len__(self) -> int:
        return len(self.q)

    @property
    def n_networks(self) -> int:
        return self.candidate_q.shape[0]

    def select(self, mask: np.ndarray) -> FixedPoints:
        """The points where ``mask`` is true (same population, conditions and stats)."""
        return replace(
            self,
            network=self.network[mask],
            condition=self.condition[mask],
            state=self.state[mask],
            q=self.q[mask],
            kind=self.kind[mask],
            n_merged=self.n_merged[mask],
        )

    def merge(self, other: FixedPoints) -> FixedPoints:
        """Merge ``other``'s points into these (same population and conditions).

        Points of ``other`` within the deduplication radius of an existing point of the
        same network, condition and kind are merged into it (lowest ``q`` kept), and slow
        points next to a fixed point are absorbed by it (see :func:`deduplicate_kinds`).
        Per-candidate ``q`` and stats stay those of ``self`` (point counts are updated).

        The merged points are listed as :func:`deduplicate_kinds` lists them (per network
        and condition: fixed points by position, then slow points by increasing ``q``), so
        the order depends only on the points, not on which pass found each one (a point
        found in the first pass on one CPU can be found only by a refinement pass on
        another). Row indices into ``self`` are therefore not valid in the result:
        relinearise it (:func:`rnnzoo_dynamics.linearize.linearize`), as the built-in
        passes do.

        ``n_merged`` keeps counting the initial states of ``self`` only: ``other``'s points
        weigh 0. Its starts are extra starts (boundary means, ends of unresolved transition
        trajectories) whose number per network depends on the batch (a refinement pass
        pads every network's starts to the batch's largest count); counting them made a
        network's ``n_merged`` depend on the networks it was analysed with, and exceed its
        ``n_candidates``.
        """
        opt = self.options
        cols: dict[str, list] = {k: [] for k in ("network", "condition", "state", "q", "n", "k")}
        for i in range(self.n_networks):
            for c in sorted(set(self.condition.tolist()) | set(other.condition.tolist())):
                a = (self.network == i) & (self.condition == c)
                b = (other.network == i) & (other.condition == c)
                if not (a.any() or b.any()):
                    continue
                st = np.vstack([self.state[a], other.state[b]])
                qq = np.concatenate([self.q[a], other.q[b]])
                ww = np.concatenate([self.n_merged[a], np.zeros(int(b.sum()), np.int64)])
                keep, merged, is_fixed = deduplicate_kinds(st, qq, ww, opt)
                cols["network"].append(np.full(len(keep), i))
                cols["condition"].append(np.full(len(keep), c))
                cols["state"].append(st[keep])
                cols["q"].append(qq[keep])
                cols["n"].append(merged)
                cols["k"].append(np.where(is_fixed, FIXED, SLOW).astype(object))
        out = {k: np.concatenate(v) if v else v for k, v in cols.items()}
        if not cols["q"]:
            return self
        n_fixed = np.bincount(out["network"][out["k"] == FIXED], minlength=self.n_networks)
        n_slow = np.bincount(out["network"][out["k"] == SLOW], minlength=self.n_networks)
        stats = dict(self.stats, n_fixed=n_fixed, n_slow=n_slow)
        return replace(
            self,
            network=out["network"].astype(np.int64),
            condition=out["condition"].astype(np.int64),
            state=out["state"],
            q=out["q"],
            kind=out["k"],
            n_merged=out["n"].astype(np.int64),
            stats=stats,
        )

    def x_of_points(self) -> np.ndarray:
        """The static input of every point, ``(n, M)``."""
        if self.x_star.ndim == 2:
            return self.x_star[self.condition]
        return self.x_star[self.network, self.condition]


# ----------------------------------------------------------------------------------------
# input normalisation


def _population_params(cell: Cell, params: Params) -> Params:
    """Add the population axis to the parameters of a single network if it is missing."""
    shapes = cell.param_shapes()
    name = next(iter(shapes))
    if name in params and params[name].dim() == len(shapes[name]):
        return {k: v.unsqueeze(0) for k, v in params.items()}
    return params


def _conditions(x_star: Any, P: int, M: int) -> Tensor:
    """``x*`` as ``(P, C, M)`` float64."""
    x = torch.as_tensor(np.asarray(x_star, dtype=np.float64))
    if x.dim() == 1:
        x = x.unsqueeze(0)
    if x.dim() == 2:
        x = x.unsqueeze(0).expand(P, -1, -1)
    if x.dim() != 3 or x.shape[0] != P or x.shape[2] != M:
        raise ValueError(
            f"x_star must have shape (M,), (C, M) or (P, C, M) with P={P}, M={M}; "
            f"got {tuple(np.shape(x_star))}"
        )
    return x


def _starts(initial_states: Any, P: int, C: int, S: int) -> Tensor:
    """Initial states as ``(P, C, K, S)`` float64."""
    h = torch.as_tensor(np.asarray(initial_states, dtype=np.float64))
    if h.dim() == 2:
        h = h.unsqueeze(0).expand(P, -1, -1)
    if h.dim() == 3:
        h = h.unsqueeze(1).expand(-1, C, -1, -1)
    if h.dim() != 4 or h.shape[0] != P or h.shape[1] != C or h.shape[3] != S:
        raise ValueError(
            f"initial_states must have shape (K, S), (P, K, S) or (P, C, K, S) with P={P}, "
            f"C={C}, S={S}; got {tuple(np.shape(initial_states))}"
        )
    return h


# ----------------------------------------------------------------------------------------
# the two stages


def speed(cell: Cell, params: Params, h: Tensor, x: Tensor) -> Tensor:
    """``q = ½‖F(h, x) − h‖²`` for states ``h`` ``(P, B, S)``; shape ``(P, B)``."""
    r = cell.step(params, h, x) - h
    return 0.5 * (r * r).sum(-1)


@dataclass
class _Region:
    """The ball each network's candidates must stay in (see ``FinderOptions.escape``)."""

    centre: Tensor  # (P, S) float64
    limit: Tensor  # (P,) float64; inf when disabled

    @classmethod
    def of(cls, h: Tensor, escape: float | None) -> _Region:
        h = h.to(torch.float64)
        ok = torch.isfinite(h).all(-1, keepdim=True)
        n = ok.sum(1).clamp_min(1)
        centre = torch.where(ok, h, 0.0).sum(1) / n
        dist = torch.where(ok[..., 0], (h - centre.unsqueeze(1)).norm(dim=-1), 0.0)
        limit = dist.amax(1).clamp_min(1e-12) * escape if escape is not None else None
        if limit is None:
            limit = torch.full((h.shape[0],), torch.inf, dtype=torch.float64)
        return cls(centre=centre, limit=limit)

    def outside(self, rows: Tensor, hp: Tensor) -> Tensor:
        """Which packed points ``(P', B')`` of networks ``rows`` have left the region."""
        c = self.centre.index_select(0, rows).unsqueeze(1).to(hp.dtype)
        d = (hp - c).norm(dim=-1)
        return ~(d <= self.limit.index_select(0, rows).unsqueeze(1).to(hp.dtype))


def _gradient_stage(
    cell: Cell,
    params: Params,
    h: Tensor,
    x: Tensor,
    opt: FinderOptions,
    region: _Region,
    escaped: Tensor,
    progress: Callable[[str, int, int], None] | None,
) -> tuple[Tensor, int]:
    """Adam on ``q`` with per-point freezing; returns the states and the steps taken.

    Points that leave the region are frozen and flagged in ``escaped`` (in place).
    """
    dtype = opt.gradient_dtype
    h = h.to(dtype).clone()
    x = x.to(dtype)
    p = params_as(params, dtype)
    P, B, S = h.shape
    m = torch.zeros_like(h)
    v = torch.zeros_like(h)
    t_point = torch.zeros(P, B, dtype=torch.int64)  # Adam's per-point step counter
    active = torch.ones(P, B, dtype=torch.bool)
    with torch.no_grad():
        q_check = speed(cell, p, h, x)
    active &= torch.isfinite(q_check) & (q_check >= opt.gradient_q_stop)
    b1, b2, eps = 0.9, 0.999, 1e-8
    steps = 0
    while steps < opt.gradient_steps and bool(active.any()):
        pack = Packing.from_mask(active)
        sub = select_networks(p, pack.rows)
        hp, mp, vp = pack.gather(h), pack.gather(m), pack.gather(v)
        xp, tp = pack.gather(x), pack.gather(t_point.unsqueeze(-1)).squeeze(-1)
        n = min(opt.check_every, opt.gradient_steps - steps)
        for _ in range(n):
            hp.requires_grad_(True)
            with torch.enable_grad():
                q = speed(cell, sub, hp, xp)
                (g,) = torch.autograd.grad(q.sum(), hp)
            with torch.no_grad():
                hp = hp.detach()
                tp = tp + 1
                mp.mul_(b1).add_(g, alpha=1 - b1)
                vp.mul_(b2).addcmul_(g, g, value=1 - b2)
                c1 = (1 - b1 ** tp.to(dtype)).unsqueeze(-1)
                c2 = (1 - b2 ** tp.to(dtype)).unsqueeze(-1)
                hp = hp - opt.learning_rate * (mp / c1) / ((vp / c2).sqrt() + eps)
        steps += n
        with torch.no_grad():
            q = speed(cell, sub, hp, xp)
        pack.scatter(h, hp)
        pack.scatter(m, mp)
        pack.scatter(v, vp)
        pack.scatter(t_point, tp)
        q_old = pack.gather(q_check.unsqueeze(-1)).squeeze(-1)
        out = region.outside(pack.rows, hp) & pack.valid
        pack.scatter(escaped, out | pack.gather(escaped.unsqueeze(-1))[..., 0])
        keep = torch.isfinite(q) & (q >= opt.gradient_q_stop) & (q < opt.gradient_stall * q_old)
        keep &= ~out
        still = torch.zeros_like(active)
        pack.scatter(still, keep)
        active = still
        pack.scatter(q_check, q)
        if progress is not None:
            progress("gradient", P * B - int(active.sum()), P * B)
    return h.to(torch.float64), steps


def _blocks(n_rows: int, n_cols: int, per_point: int, budget: int):
    """Row/column slices of a ``(n_rows, n_cols)`` batch with at most ``budget`` elements."""
    per_row = max(1, n_cols * per_point)
    if per_row <= budget:
        step_r = max(1, budget // per_row)
        for r0 in range(0, n_rows, step_r):
            yield slice(r0, min(n_rows, r0 + step_r)), slice(0, n_cols)
    else:
        step_c = max(1, budget // max(1, per_point))
        for r0 in range(n_rows):
            for c0 in range(0, n_cols, step_c):
                yield slice(r0, r0 + 1), slice(c0, min(n_cols, c0 + step_c))


def _lm_step(
    cell: Cell, params: Params, h: Tensor, x: Tensor, A: Tensor, r: Tensor, mu: Tensor
) -> Tensor:
    """Levenberg-Marquardt step ``(AᵀA + μ s I) δ = −Aᵀ r`` with ``s = ‖A‖²_F / S``."""
    S = h.shape[-1]
    eye = torch.eye(S, dtype=h.dtype)
    At = A.transpose(-1, -2)
    H = At @ A
    g = (At @ r.unsqueeze(-1)).squeeze(-1)
    scale = torch.diagonal(H, dim1=-2, dim2=-1).mean(-1).clamp_min(1e-300)
    L, info = torch.linalg.cholesky_ex(H + (mu * scale).unsqueeze(-1).unsqueeze(-1) * eye)
    d = torch.cholesky_solve(-g.unsqueeze(-1), L).squeeze(-1)
    return torch.where((info == 0).unsqueeze(-1), d, torch.full_like(d, torch.nan))


def _polish_block(
    cell: Cell, params: Params, h: Tensor, x: Tensor, mu: Tensor, opt: FinderOptions
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One damped-Newton / Levenberg-Marquardt iteration on a packed block.

    The Newton direction ``δ = −A⁻¹ r`` is a descent direction of ``q`` whenever ``A`` is
    invertible (``∇q·δ = −‖r‖²``), so it is tried with step lengths 1, ½, ¼, ⅛ (cheap: one
    ``F`` evaluation each). Points where none lowers ``q`` (``A`` near-singular: slow points,
    line attractors) take a Levenberg-Marquardt step instead, computed for those points only.

    Returns the new states, their ``q``, the new relative damping and which points stopped
    (stalled, or converged to a local minimum of ``q``).
    """
    S = h.shape[-1]
    eye = torch.eye(S, dtype=h.dtype)
    r = cell.step(params, h, x) - h
    q = 0.5 * (r * r).sum(-1)
    A = cell.jacobian_h(params, h, x) - eye
    lu, piv, info = torch.linalg.lu_factor_ex(A)
    d = torch.linalg.lu_solve(lu, piv, -r.unsqueeze(-1)).squeeze(-1)
    d = torch.where((info != 0).unsqueeze(-1), torch.full_like(d, torch.nan), d)
    h_new, q_new = h.clone(), q.clone()
    ok = torch.zeros_like(q, dtype=torch.bool)
    for alpha in (1.0, 0.5, 0.25, 0.125):
        h_try = h + alpha * d
        q_try = speed(cell, params, h_try, x)
        good = ~ok & torch.isfinite(q_try) & (q_try < q)
        h_new = torch.where(good.unsqueeze(-1), h_try, h_new)
        q_new = torch.where(good, q_try, q_new)
        ok |= good
        if bool(ok.all()):
            break
    mu_new = torch.where(ok, mu / 10, mu)
    stalled = torch.zeros_like(ok)
    need = ~ok
    if bool(need.any()):
        pack = Packing.from_mask(need)
        sub = select_networks(params, pack.rows)
        hp, xp = pack.gather(h), pack.gather(x)
        qp, mup = pack.gather(q.unsqueeze(-1))[..., 0], pack.gather(mu.unsqueeze(-1))[..., 0]
        d_lm = _lm_step(cell, sub, hp, xp, pack.gather(A), pack.gather(r), mup)
        h_lm = hp + d_lm
        q_lm = speed(cell, sub, h_lm, xp)
        good = torch.isfinite(q_lm) & (q_lm < qp)
        pack.scatter(h_new, torch.where(good.unsqueeze(-1), h_lm, hp))
        pack.scatter(q_new, torch.where(good, q_lm, qp))
        mu_lm = torch.where(good, mup / 10, mup * 10)
        pack.scatter(mu_new, mu_lm)
        pack.scatter(stalled, ~good & (mu_lm > opt.max_damping))
    mu_new = mu_new.clamp_min(1e-14)
    # converged to a local minimum of q: an accepted step that barely lowers it
    stalled |= (q_new < q) & (q - q_new <= opt.polish_rtol * q)
    return h_new, q_new, mu_new, stalled


def _polish(
    cell: Cell,
    params: Params,
    h: Tensor,
    x: Tensor,
    opt: FinderOptions,
    region: _Region,
    escaped: Tensor,
    selected: Tensor,
    progress: Callable[[str, int, int], None] | None,
) -> tuple[Tensor, Tensor, int]:
    """Batched float64 Newton / LM polish of the ``selected`` points.

    Returns states, ``q`` and iterations. Escaped points are not polished; points that leave
    the region are flagged (in place).
    """
    p = params_as(params, torch.float64)
    h = h.to(torch.float64).clone()
    x = x.to(torch.float64)
    P, B, S = h.shape
    with torch.no_grad():
        q = speed(cell, p, h, x)
    mu = torch.full((P, B), opt.damping, dtype=torch.float64)
    active = torch.isfinite(q) & (q >= opt.polish_q_stop) & ~escaped & selected
    n_sel = int(active.sum())
    it = 0
    with torch.no_grad():
        while it < opt.polish_steps and bool(active.any()):
            pack = Packing.from_mask(active)
            hp, xp, mup = pack.gather(h), pack.gather(x), pack.gather(mu.unsqueeze(-1))[..., 0]
            qp = torch.empty(hp.shape[:2], dtype=torch.float64)
            stp = torch.zeros(hp.shape[:2], dtype=torch.bool)
            rows, cols = hp.shape[:2]
            for rs, cs in _blocks(rows, cols, S * S * 4, opt.max_block_elements):
                sub = select_networks(p, pack.rows[rs])
                hb, qb, mb, sb = _polish_block(cell, sub, hp[rs, cs], xp[rs, cs], mup[rs, cs], opt)
                hp[rs, cs], qp[rs, cs], mup[rs, cs], stp[rs, cs] = hb, qb, mb, sb
            pack.scatter(h, hp)
            pack.scatter(q, qp)
            pack.scatter(mu, mup)
            out = region.outside(pack.rows, hp) & pack.valid
            pack.scatter(escaped, out)
            keep = torch.isfinite(qp) & (qp >= opt.polish_q_stop) & ~stp & ~out
            still = torch.zeros_like(active)
            pack.scatter(still, keep)
            active = still
            it += 1
            if progress is not None:
                progress("polish", n_sel - int(active.sum()), n_sel)
    return h, q, it


# ----------------------------------------------------------------------------------------
# classification and deduplication


def deduplicate(
    states: np.ndarray, q: np.ndarray, tol: float, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy KD-tree deduplication keeping the lowest ``q`` of each cluster.

    Points are visited in order of increasing ``q``; each kept point absorbs every not yet
    absorbed point within ``tol * (1 + max‖h‖)``. No point is ever dropped for being far from
    the others.

    Parameters
    ----------
    states : ndarray, (n, S)
    q : ndarray, (n,)
    tol : float
        Relative merge radius.
    weights : ndarray of int, (n,), optional
        How many candidates each point stands for (default 1).

    Returns
    -------
    keep : ndarray of int
        Indices of the kept points, in order of increasing ``q``.
    merged : ndarray of int
        Total weight of each kept point's cluster (itself included).
    """
    n = len(q)
    w = np.ones(n, dtype=np.int64) if weights is None else np.asarray(weights, dtype=np.int64)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    radius = tol * (1.0 + float(np.linalg.norm(states, axis=1).max()))
    tree = cKDTree(states)
    order = np.argsort(q, kind="stable")
    taken = np.zeros(n, dtype=bool)
    keep, merged = [], []
    for i in order:
        if taken[i]:
            continue
        near = np.asarray(tree.query_ball_point(states[i], radius), dtype=np.int64)
        near = near[~taken[near]]
        taken[near] = True
        taken[i] = True
        keep.append(i)
        merged.append(int(w[near].sum()) if len(near) else int(w[i]))
    return np.asarray(keep, dtype=np.int64), np.asarray(merged, dtype=np.int64)


def deduplicate_kinds(
    states: np.ndarray,
    q: np.ndarray,
    weights: np.ndarray,
    options: FinderOptions,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deduplicate the points of one network and condition, fixed and slow together.

    Fixed points (``q < q_tol``) are deduplicated first, with ``dedup_tol``, so that a slow
    point never swallows a true fixed point; then slow points with ``slow_dedup_tol``; then
    every slow point within the slow-point radius of a kept fixed point is absorbed by the
    nearest one (its count is added to that fixed point's): a slow point next to a fixed
    point is the same point seen by a candidate that stopped early, not another point.

    Returns
    -------
    keep : ndarray of int
        Indices of the kept points: fixed points first, ordered by position
        (:func:`rnnzoo_dynamics._canonical.position_order`: their ``q`` is rounding noise,
        ~1e-30, whose order differs between CPUs), then slow points by increasing ``q``.
    merged : ndarray of int
        Candidates each kept point stands for.
    is_fixed : ndarray of bool
    """
    opt = options
    fixed = q < opt.q_tol
    parts = []
    for mask, tol in ((fixed, opt.dedup_tol), (~fixed, opt.slow_dedup_tol)):
        idx = np.nonzero(mask)[0]
        keep, merged = deduplicate(states[idx], q[idx], tol, weights[idx])
        parts.append((idx[keep], merged))
    (kf, mf), (ks, ms) = parts
    if len(kf) and len(ks):
        both = np.concatenate([states[kf], states[ks]])
        radius = opt.slow_dedup_tol * (1.0 + float(np.linalg.norm(both, axis=1).max()))
        dist, nearest = cKDTree(states[kf]).query(states[ks])
        absorbed = dist <= radius
        mf = mf.copy()
        np.add.at(mf, nearest[absorbed], ms[absorbed])
        ks, ms = ks[~absorbed], ms[~absorbed]
    by_position = position_order(states[kf])
    kf, mf = kf[by_position], mf[by_position]
    keep = np.concatenate([kf, ks]).astype(np.int64)
    merged = np.concatenate([mf, ms]).astype(np.int64)
    return keep, merged, np.arange(len(keep)) < len(kf)


def _premerge(
    h: Tensor, q: Tensor, usable: Tensor, C: int, K: int, tol: float
) -> tuple[Tensor, Tensor]:
    """Merge near-identical candidates of each network and condition before the polish.

    Returns ``rep`` ``(P, C*K)``, the index (along the candidate axis) of the candidate that
    represents each one (itself for representatives and unusable candidates), and the weight
    (cluster size) of every representative (0 for merged members).
    """
    P = h.shape[0]
    rep = torch.arange(C * K).unsqueeze(0).repeat(P, 1)
    weight = torch.ones(P, C * K, dtype=torch.int64)
    h_np, q_np, ok = h.numpy(), q.numpy(), usable.numpy()
    for i in range(P):
        for c in range(C):
            idx = np.arange(c * K, (c + 1) * K)[ok[i, c * K : (c + 1) * K]]
            if len(idx) < 2:
                continue
            st = h_np[i, idx]
            radius = tol * (1.0 + float(np.linalg.norm(st, axis=1).max()))
            tree = cKDTree(st)
            taken = np.zeros(len(idx), dtype=bool)
            for a in np.argsort(q_np[i, idx], kind="stable"):
                if taken[a]:
                    continue
                near = np.asarray(tree.query_ball_point(st[a], radius), dtype=np.int64)
                near = near[~taken[near]]
                taken[near] = True
                taken[a] = True
                members = idx[near]
                rep[i, members] = int(idx[a])
                weight[i, members] = 0
                weight[i, idx[a]] = max(1, len(near))
    return rep, weight


# ----------------------------------------------------------------------------------------
# public entry point


def find_fixed_points(
    cell: Cell,
    params: Params,
    x_star: Any,
    initial_states: Any,
    options: FinderOptions | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    region_states: Any | None = None,
) -> FixedPoints:
    """Find the fixed points of a population of networks of one cell type.

    Parameters
    ----------
    cell : Cell
        The cell (architecture, activation, sizes) shared by the population.
    params : dict of str to Tensor
        Parameters with a population axis ``P`` first (a single network's parameters without
        it are accepted too).
    x_star : array_like
        Static inputs: ``(M,)`` one condition, ``(C, M)`` conditions shared by every network,
        or ``(P, C, M)``.
    initial_states : array_like
        ``(K, S)`` shared starts, ``(P, K, S)`` per network, or ``(P, C, K, S)`` per network
        and condition (see :func:`rnnzoo_dynamics.initial_states.sample_initial_states`).
    options : FinderOptions, optional
        Tolerances and budgets; defaults documented in :class:`FinderOptions`.
    progress : callable, optional
        ``progress(stage, done, total)`` is called after each block of work.
    region_states : array_like, optional
        States that set each network's region of interest (``FinderOptions.escape``):
        ``(K', S)``, ``(P, K', S)`` or ``(P, C, K', S)``; non-finite rows are ignored.
        Default: the initial states. A second pass from a few starts (e.g. the boundary
        starts of :mod:`rnnzoo_dynamics.basins`) passes the first pass's starts, so that
        its region is the network's, not the hull of the few starts.

    Returns
    -------
    FixedPoints
        Unique fixed and slow points with their ``q``; see :class:`FixedPoints`.
    """
    opt = options or FinderOptions()
    params = _population_params(cell, params)
    P = n_networks(params)
    S, M = cell.state_size, cell.n_inputs
    x = _conditions(x_star, P, M)
    C = x.shape[1]
    h0 = _starts(initial_states, P, C, S)
    K = h0.shape[2]
    h = h0.reshape(P, C * K, S)
    xb = x.unsqueeze(2).expand(P, C, K, M).reshape(P, C * K, M)

    t0 = time.perf_counter()
    if region_states is None:
        region = _Region.of(h, opt.escape)
    else:
        rs = np.asarray(region_states, dtype=np.float64)
        rs = _starts(rs, P, C, S) if rs.ndim < 4 else _starts(rs, P, rs.shape[1], S)
        region = _Region.of(rs.reshape(P, -1, S), opt.escape)
    escaped = torch.zeros(h.shape[:2], dtype=torch.bool)
    h, g_steps = _gradient_stage(cell, params, h, xb, opt, region, escaped, progress)
    t1 = time.perf_counter()
    with torch.no_grad():
        q_mid = speed(cell, params_as(params, torch.float64), h, xb)
    usable = torch.isfinite(q_mid) & torch.isfinite(h).all(-1) & ~escaped
    if opt.premerge_tol:
        rep, weight = _premerge(h, q_mid, usable, C, K, opt.premerge_tol)
    else:
        rep = torch.arange(C * K).unsqueeze(0).repeat(P, 1)
        weight = torch.ones(P, C * K, dtype=torch.int64)
    polish = weight > 0
    h, q, p_steps = _polish(cell, params, h, xb, opt, region, escaped, polish, progress)
    t2 = time.perf_counter()
    # merged members share their representative's result
    h = torch.gather(h, 1, rep.unsqueeze(-1).expand(-1, -1, S))
    q = torch.gather(q, 1, rep)
    escaped = torch.gather(escaped, 1, rep)

    h_np = h.numpy().reshape(P, C, K, S)
    q_np = q.numpy().reshape(P, C, K)
    w_np = weight.numpy().reshape(P, C, K)
    esc = escaped.numpy().reshape(P, C, K)
    finite = np.isfinite(q_np) & np.isfinite(h_np).all(-1)
    q_np = np.where(esc, np.inf, q_np)  # escaped candidates are never reported
    upper = opt.slow_q_tol if opt.slow_q_tol is not None else opt.q_tol
    cols: dict[str, list] = {k: [] for k in ("network", "condition", "state", "q", "n")}
    n_fixed = np.zeros(P, dtype=np.int64)
    n_slow = np.zeros(P, dtype=np.int64)
    for i in range(P):
        for c in range(C):
            sel = finite[i, c] & (q_np[i, c] < upper) & (w_np[i, c] > 0)
            if not sel.any():
                continue
            st, qq, ww = h_np[i, c][sel], q_np[i, c][sel], w_np[i, c][sel]
            keep, merged, is_fixed = deduplicate_kinds(st, qq, ww, opt)
            cols["network"].append(np.full(len(keep), i))
            cols["condition"].append(np.full(len(keep), c))
            cols["state"].append(st[keep])
            cols["q"].append(qq[keep])
            cols["n"].append(merged)
            n_fixed[i] += int(is_fixed.sum())
            n_slow[i] += int((~is_fixed).sum())
    if cols["q"]:
        out = {k: np.concatenate(v) for k, v in cols.items()}
    else:
        out = {
            "network": np.zeros(0, np.int64),
            "condition": np.zeros(0, np.int64),
            "state": np.zeros((0, S)),
            "q": np.zeros(0),
            "n": np.zeros(0, np.int64),
        }
    kind = np.where(out["q"] < opt.q_tol, FIXED, SLOW).astype(object)
    x_np = x.numpy()
    stats = {
        "n_fixed": n_fixed,
        "n_slow": n_slow,
        "n_nonfinite": (~finite).reshape(P, -1).sum(1),
        "n_dropped": (finite & ~esc & (q_np >= upper)).reshape(P, -1).sum(1),
        "n_escaped": (finite & esc).reshape(P, -1).sum(1),
        "gradient_steps": g_steps,
        "polish_steps": p_steps,
        "gradient_seconds": t1 - t0,
        "polish_seconds": t2 - t1,
    }
    same = bool(np.all(x_np == x_np[:1]))
    return FixedPoints(
        network=out["network"].astype(np.int64),
        condition=out["condition"].astype(np.int64),
        state=out["state"],
        q=out["q"],
        kind=kind,
        n_merged=out["n"].astype(np.int64),
        x_star=x_np[0] if same else x_np,
        candidate_q=q_np,
        stats=stats,
        options=opt,
    )


def log10_q_summary(q: np.ndarray) -> dict[str, float]:
    """Quantiles of ``log10 q`` (min, median, 90 %, max) for reports; NaN-safe."""
    q = np.asarray(q, dtype=np.float64).ravel()
    q = q[np.isfinite(q)]
    if q.size == 0:
        return {"min": math.nan, "median": math.nan, "p90": math.nan, "max": math.nan}
    lq = np.log10(np.maximum(q, 1e-300))
    return {
        "min": float(lq.min()),
        "median": float(np.median(lq)),
        "p90": float(np.quantile(lq, 0.9)),
        "max": float(lq.max()),
    }
