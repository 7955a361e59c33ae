"""Linearised dynamics around fixed points (paper §2.3 and Appendix B).

Around a fixed point ``h*`` of ``h_t = F(h_{t-1}, x*)``,
``δh_t ≈ J δh_{t-1} + B δx_t`` with ``J = ∂F/∂h`` and ``B = ∂F/∂x`` (closed form, from the
cell). ``J`` is non-normal in general, so it is decomposed as ``J = R Λ Lᴴ`` with right
eigenvectors ``r_k`` (columns of ``R``, unit norm) and left eigenvectors ``l_k`` (columns of
``L``) scaled to be **biorthonormal**: ``l_iᴴ r_j = δ_ij``. ``Lᴴ`` is obtained as ``R⁻¹`` by an
LU solve, never with a pseudo-inverse, whose singular-value cut silently breaks
biorthonormality for the ill-conditioned eigenbases of non-normal Jacobians.

Stability of the discrete-time map, with tolerance ``eps`` (default ``1e-3``): a mode is
*unstable* when ``|λ| > 1 + eps`` and *marginal* when ``1 − eps ≤ |λ| ≤ 1 + eps``. A mode
that grows by less than 0.1 % per step needs more than ~700 steps to grow e-fold, longer than
any task's trial (T ≤ 500), so it is reported as marginal rather than unstable. The point's
label is ``stable`` (every ``|λ| < 1 − eps``), ``marginal`` (none unstable, some marginal),
``saddle`` (some unstable, some not) or ``unstable`` (every mode unstable).

Jacobians are formed per point, ``(n, S, S)``, in blocks; the ``(n·S)²`` matrix of all points
together is never built.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor

from rnnzoo_dynamics._batch import params_as
from rnnzoo_dynamics._canonical import phase_normalized
from rnnzoo_dynamics.fixed_points import FixedPoints, _population_params
from rnnzoo_train.cells.base import Cell, Params

#: default stability tolerance: unstable when |λ| > 1 + STABILITY_EPS
STABILITY_EPS = 1e-3
STABILITY_LABELS = ("stable", "marginal", "saddle", "unstable")


def point_jacobians(
    cell: Cell,
    params: Params,
    network: np.ndarray,
    states: np.ndarray,
    x: np.ndarray,
    wrt: str = "h",
    max_block_elements: int = 2**20,
    out: Tensor | None = None,
) -> Tensor:
    """Closed-form Jacobians at many points of many networks, in float64.

    Parameters
    ----------
    cell : Cell
    params : dict of str to Tensor
        Population parameters ``(P, ...)``.
    network : ndarray of int, (n,)
        Network index of every point.
    states : ndarray, (n, S)
    x : ndarray, (n, M)
        Static input of every point.
    wrt : {"h", "x"}
        ``∂F/∂h`` ``(n, S, S)`` or ``∂F/∂x`` ``(n, S, M)``.
    max_block_elements : int
        Most Jacobian entries formed at once (2**20, 8 MiB: points are processed in blocks
        of one network whose temporaries stay in cache).
    out : Tensor, optional
        A float64 buffer of the result's shape to fill (avoids allocating the result, whose
        first touch dominates the time for large batches on some machines).

    Returns
    -------
    Tensor, float64, ``(n, S, S)`` or ``(n, S, M)``.
    """
    params = params_as(_population_params(cell, params), torch.float64)
    n = len(network)
    if len(states) != n or len(x) != n:
        raise ValueError(
            f"network, states and x must have one row per point; got {n}, {len(states)}, {len(x)}"
        )
    S = cell.state_size
    width = S if wrt == "h" else cell.n_inputs
    if out is None:
        out = torch.empty(n, S, width, dtype=torch.float64)
    elif tuple(out.shape) != (n, S, width) or out.dtype != torch.float64:
        raise ValueError(f"out must be float64 of shape {(n, S, width)}, got {tuple(out.shape)}")
    if n == 0:
        return out
    network = np.asarray(network, dtype=np.int64)
    h_all = torch.as_tensor(np.asarray(states), dtype=torch.float64)
    x_all = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    fn = cell.jacobian_h if wrt == "h" else cell.jacobian_x
    # blocks of points of one network, small enough for the cell's temporaries to stay in
    # cache; each block is written straight into its rows of the result
    per_block = max(1, max_block_elements // (S * width))
    order = np.argsort(network, kind="stable")
    bounds = np.flatnonzero(np.diff(network[order])) + 1
    with torch.no_grad():
        for idx in np.split(order, bounds):
            sub = {k: v[int(network[idx[0]]) : int(network[idx[0]]) + 1] for k, v in params.items()}
            for k0 in range(0, len(idx), per_block):
                ii = idx[k0 : k0 + per_block]
                J = fn(sub, h_all[ii].unsqueeze(0), x_all[ii].unsqueeze(0))[0]
                if ii[-1] - ii[0] == len(ii) - 1:  # contiguous rows: a plain slice copy
                    out[int(ii[0]) : int(ii[-1]) + 1] = J
                else:
                    out.index_copy_(0, torch.as_tensor(ii), J)
    return out


@dataclass
class Eigendecomposition:
    """``J = R diag(λ) Lᴴ`` for a batch of Jacobians, modes sorted by ``|λ|`` descending.

    Attributes
    ----------
    eigenvalues : ndarray of complex128, (n, S)
    right : ndarray of complex128, (n, S, S)
        ``right[i, :, k]`` is the unit-norm right eigenvector of mode ``k``.
    left : ndarray of complex128, (n, S, S)
        ``left[i, :, k]`` is the left eigenvector of mode ``k``: ``Jᴴ l = conj(λ) l`` and
        ``left[i].conj().T @ right[i] = I``.
    biorthonormality_error : ndarray, (n,)
        ``max |Lᴴ R − I|`` per point (a direct check, small unless ``R`` is near-singular).
    condition : ndarray, (n,)
        Condition number of ``R`` (1 for normal ``J``; large for strongly non-normal ones).
    """

    eigenvalues: np.ndarray
    right: np.ndarray
    left: np.ndarray
    biorthonormality_error: np.ndarray
    condition: np.ndarray


def eigendecomposition(J: Tensor | np.ndarray) -> Eigendecomposition:
    """Eigenvalues and biorthonormal right/left eigenvectors of a batch ``(n, S, S)``.

    Modes are ordered by decreasing ``|λ|`` (compared to 12 decimals, so that equal moduli,
    e.g. of ``λ`` and ``−λ``, are not ordered by rounding), then decreasing imaginary part
    (within a complex-conjugate pair the eigenvalue with positive imaginary part comes
    first), then decreasing real part. Each right eigenvector has unit norm and the phase
    (for a real one, the sign) that makes its projection on a fixed generic direction real
    and positive (:func:`rnnzoo_dynamics._canonical.phase_normalized`): LAPACK's own choice
    differs between CPUs' code paths. A matrix with non-finite entries, or one LAPACK cannot
    decompose, gets NaN eigenvalues (and stability counts of none) instead of an error.
    """
    J = torch.as_tensor(J, dtype=torch.float64)
    n, S, _ = J.shape
    if n == 0:
        e = np.zeros((0, S), np.complex128)
        v = np.zeros((0, S, S), np.complex128)
        return Eigendecomposition(e, v, v.copy(), np.zeros(0), np.zeros(0))
    # scale each matrix by a power of two (exact) so LAPACK sees entries of order one
    amax = J.abs().amax(dim=(-1, -2))
    ok = torch.isfinite(amax) & (amax > 0)
    scale = torch.where(ok, torch.exp2(torch.round(torch.log2(torch.where(ok, amax, 1.0)))), 1.0)
    Js = torch.where(torch.isfinite(J), J, 0.0) / scale[:, None, None]
    try:
        lam, R = torch.linalg.eig(Js)
    except RuntimeError:  # a matrix LAPACK cannot handle: decompose one by one
        lam = torch.full((n, S), complex("nan"), dtype=torch.complex128)
        R = torch.full((n, S, S), complex("nan"), dtype=torch.complex128)
        for i in range(n):
            try:
                lam[i], R[i] = torch.linalg.eig(Js[i])
            except RuntimeError:
                R[i] = torch.eye(S, dtype=torch.complex128)  # eigenvalues stay NaN
    lam = lam * scale[:, None]
    lam = torch.where(torch.isfinite(J).all(-1).all(-1)[:, None], lam, complex("nan"))
    mag = torch.nan_to_num(lam.abs(), nan=-1.0).numpy()
    order = np.lexsort(
        (-np.nan_to_num(lam.real.numpy()), -np.nan_to_num(lam.imag.numpy()), -np.round(mag, 12)),
        axis=-1,
    )
    order_t = torch.as_tensor(order)
    lam = torch.gather(lam, 1, order_t)
    R = torch.gather(R, 2, order_t.unsqueeze(1).expand(-1, S, -1))
    eye = torch.eye(S, dtype=R.dtype).expand(n, S, S)
    cond = torch.linalg.cond(R)
    cond = cond.real if cond.is_complex() else cond
    bad = ~(cond < 1e12)
    if bool(bad.any()):
        # repeated eigenvalues: LAPACK may return dependent vectors for an eigenspace that
        # has a full basis; rebuild those eigenspaces from null spaces (rare, per matrix)
        R = R.clone()
        for i in torch.nonzero(bad).flatten().tolist():
            lam_i = lam[i].numpy()
            if np.isfinite(lam_i).all():
                R[i] = torch.as_tensor(
                    _eigenspace_basis(Js[i].numpy(), lam_i / float(scale[i]), R[i].numpy())
                )
        cond = torch.linalg.cond(R)
        cond = cond.real if cond.is_complex() else cond
    R = torch.as_tensor(phase_normalized(R.numpy()))
    Rinv, info = torch.linalg.solve_ex(R, eye)  # rows are l_kᴴ
    if bool((info != 0).any()):
        # defective J (a Jordan block): no eigenbasis, so no biorthonormal left vectors;
        # the least-squares inverse is reported, with its (large) biorthonormality error
        fail = info != 0
        Rinv[fail] = torch.linalg.pinv(R[fail])
    L = Rinv.conj().transpose(-1, -2).resolve_conj()
    err = (Rinv @ R - eye).abs().amax(dim=(-1, -2))
    return Eigendecomposition(
        eigenvalues=lam.numpy(),
        right=R.numpy(),
        left=L.numpy(),
        biorthonormality_error=err.numpy(),
        condition=cond.numpy(),
    )


def _eigenspace_basis(J: np.ndarray, lam: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Right eigenvectors with every repeated eigenvalue's vectors from its null space.

    For a cluster of ``m`` numerically equal eigenvalues, the right singular vectors of
    ``J − λ I`` with the ``m`` smallest singular values span the eigenspace when it has
    dimension ``m`` (an orthonormal basis, so ``R`` becomes well conditioned); for a
    defective cluster the vectors stay as LAPACK returned them.
    """
    S = len(lam)
    out = R.copy()
    scale = max(1.0, float(np.abs(lam).max()))
    norm = max(float(np.linalg.norm(J, 2)), 1e-300)
    done = np.zeros(S, dtype=bool)
    for k in range(S):
        if done[k]:
            continue
        members = np.nonzero(~done & (np.abs(lam - lam[k]) <= 1e-8 * scale))[0]
        done[members] = True
        m = len(members)
        if m < 2:
            continue
        centre = lam[members].mean()
        _, sv, vh = np.linalg.svd(J - centre * np.eye(S))
        if sv[-m] <= 1e-10 * norm:  # an m-dimensional eigenspace (not a Jordan block)
            out[:, members] = vh[-m:].conj().T
    return out


def stability(eigenvalues: np.ndarray, eps: float = STABILITY_EPS) -> dict[str, np.ndarray]:
    """Unstable and marginal mode counts and a stability label per point.

    Parameters
    ----------
    eigenvalues : ndarray of complex, (n, S)
        NaN entries (padding) are ignored.
    eps : float
        Tolerance: unstable when ``|λ| > 1 + eps``, marginal when ``| |λ| − 1 | ≤ eps``.

    Returns
    -------
    dict with ``n_unstable``, ``n_marginal`` (int, ``(n,)``) and ``stability`` (str, ``(n,)``).
    """
    mag = np.abs(np.asarray(eigenvalues))
    known = np.isfinite(mag)
    unstable = (mag > 1 + eps) & known
    marginal = (np.abs(mag - 1) <= eps) & known
    n_unstable = unstable.sum(-1)
    n_marginal = marginal.sum(-1)
    n_modes = known.sum(-1)
    label = np.where(
        n_unstable == 0,
        np.where(n_marginal == 0, "stable", "marginal"),
        np.where(n_unstable == n_modes, "unstable", "saddle"),
    ).astype(object)
    return {"n_unstable": n_unstable, "n_marginal": n_marginal, "stability": label}


@dataclass
class Linearization:
    """Linearised dynamics at every point of a :class:`FixedPoints`.

    Attributes
    ----------
    jacobian_h : Tensor or None, (n, S, S)
        Kept only when requested (``keep_jacobians=True``).
    input_jacobian : ndarray, (n, S, M)
        ``∂F/∂x`` at each point (used by the input-response analyses).
    eig : Eigendecomposition
    n_unstable, n_marginal : ndarray of int, (n,)
    stability : ndarray of str, (n,)
    readout : ndarray, (n, n_outputs)
        Network output at each point.
    eps : float
        The stability tolerance used.
    """

    eig: Eigendecomposition
    n_unstable: np.ndarray
    n_marginal: np.ndarray
    stability: np.ndarray
    readout: np.ndarray
    input_jacobian: np.ndarray
    eps: float
    jacobian_h: Tensor | None = None


def readout_at(cell: Cell, params: Params, network: np.ndarray, states: np.ndarray) -> np.ndarray:
    """Network output ``y = readout_state(h) W_out + b_out`` at each point, ``(n, K)``."""
    params = params_as(_population_params(cell, params), torch.float64)
    network = torch.as_tensor(np.asarray(network, dtype=np.int64))
    h = torch.as_tensor(states, dtype=torch.float64)
    W = params["W_out"].index_select(0, network)
    b = params["b_out"].index_select(0, network)
    y = (cell.readout_state(h).unsqueeze(1) @ W).squeeze(1) + b
    return y.numpy()


def linearize(
    cell: Cell,
    params: Params,
    points: FixedPoints,
    eps: float = STABILITY_EPS,
    keep_jacobians: bool = False,
    max_block_elements: int = 2**22,
) -> Linearization:
    """Jacobians, biorthonormal eigendecomposition and stability at every point.

    Parameters
    ----------
    cell : Cell
    params : dict of str to Tensor
        Population parameters, as given to :func:`find_fixed_points`.
    points : FixedPoints
    eps : float
        Stability tolerance (default ``1e-3``; see the module docstring).
    keep_jacobians : bool
        Keep the ``(n, S, S)`` Jacobians in the result.
    max_block_elements : int
        Jacobian entries formed and decomposed at once (2**22, 32 MiB). Unless
        ``keep_jacobians``, the ``(n, S, S)`` Jacobians of all points are never held at
        once: each block is decomposed and dropped (1,024 points at 256 units would be
        512 MiB, plus the decomposition's float64 temporaries of the same size).

    Returns
    -------
    Linearization
    """
    x = points.x_of_points()
    n, S = len(points), cell.state_size
    Jx = point_jacobians(cell, params, points.network, points.state, x, "x")
    J_all = torch.empty(n, S, S, dtype=torch.float64) if keep_jacobians else None
    per = max(1, max_block_elements // max(1, S * S))
    parts = []
    for k0 in range(0, n, per):
        rows = slice(k0, min(n, k0 + per))
        J = point_jacobians(
            cell,
            params,
            points.network[rows],
            points.state[rows],
            x[rows],
            "h",
            out=None if J_all is None else J_all[rows],
        )
        parts.append(eigendecomposition(J))
    eig = _concatenate(parts) if parts else eigendecomposition(torch.zeros(0, S, S))
    st = stability(eig.eigenvalues, eps)
    return Linearization(
        eig=eig,
        n_unstable=st["n_unstable"],
        n_marginal=st["n_marginal"],
        stability=st["stability"],
        readout=readout_at(cell, params, points.network, points.state),
        input_jacobian=Jx.numpy(),
        eps=eps,
        jacobian_h=J_all,
    )


def _concatenate(parts: list[Eigendecomposition]) -> Eigendecomposition:
    if len(parts) == 1:
        return parts[0]
    return Eigendecomposition(
        **{
            f.name: np.concatenate([getattr(p, f.name) for p in parts])
            for f in fields(Eigendecomposition)
        }
    )
