"""Linearisation: Jacobians at points, biorthonormal eigenvectors, stability labels."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from rnnzoo_dynamics.linearize import (
    eigendecomposition,
    point_jacobians,
    readout_at,
    stability,
)
from rnnzoo_train.cells import ACTIVATIONS, ARCHITECTURES, get_cell, stack_params


def random_non_normal(rng, n, S, strength=3.0):
    A = 0.4 * rng.normal(size=(n, S, S))
    return A + strength * np.triu(rng.normal(size=(n, S, S)), 1)


def test_eigendecomposition_is_biorthonormal_and_matches_scipy():
    rng = np.random.default_rng(0)
    J = random_non_normal(rng, 20, 12)
    eig = eigendecomposition(J)
    for i in range(len(J)):
        R, L, lam = eig.right[i], eig.left[i], eig.eigenvalues[i]
        np.testing.assert_allclose(L.conj().T @ R, np.eye(12), atol=1e-9)
        np.testing.assert_allclose(J[i] @ R, R * lam, atol=1e-9)
        # left eigenvectors: l^H J = lambda l^H
        np.testing.assert_allclose(L.conj().T @ J[i], lam[:, None] * L.conj().T, atol=1e-8)
        np.testing.assert_allclose(R @ np.diag(lam) @ L.conj().T, J[i], atol=1e-9)
        np.testing.assert_allclose(np.linalg.norm(R, axis=0), 1.0, atol=1e-12)
        # independent reference: LAPACK's own left eigenvectors, rescaled to l^H r = 1
        w, vl, vr = scipy.linalg.eig(J[i], left=True, right=True)
        for k in range(12):
            j = int(np.argmin(np.abs(w - lam[k])))
            ref = vl[:, j] / np.conj(vl[:, j].conj() @ R[:, k])
            # r_k is defined up to a phase; l_k then carries the conjugate phase
            np.testing.assert_allclose(np.abs(ref), np.abs(L[:, k]), rtol=1e-6, atol=1e-9)
    mag = np.abs(eig.eigenvalues)
    assert (np.diff(mag, axis=1) <= 1e-12).all()  # sorted by |lambda|, descending
    assert (eig.biorthonormality_error < 1e-9).all()
    assert (eig.condition >= 1).all()


def test_pinv_would_fail_where_the_solve_does_not():
    # a strongly non-normal Jacobian with a near-defective eigenbasis
    eps = 1e-9
    J = np.array([[[1.0, 1.0], [eps**2, 1.0]]])
    eig = eigendecomposition(J)
    R, L = eig.right[0], eig.left[0]
    np.testing.assert_allclose(L.conj().T @ R, np.eye(2), atol=1e-6)
    assert eig.condition[0] > 1e6
    pinv = np.linalg.pinv(R, rcond=1e-8)  # a typical default cut
    assert np.abs(pinv @ R - np.eye(2)).max() > 0.1


def test_conjugate_pairs_have_positive_imaginary_part_first():
    theta = 0.3
    rot = 0.9 * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    J = np.zeros((1, 3, 3))
    J[0, :2, :2] = rot
    J[0, 2, 2] = 0.5
    lam = eigendecomposition(J).eigenvalues[0]
    assert lam[0].imag > 0
    np.testing.assert_allclose(lam[0], 0.9 * np.exp(1j * theta))
    np.testing.assert_allclose(lam[1], np.conj(lam[0]))
    np.testing.assert_allclose(lam[2], 0.5)


def test_modes_and_eigenvectors_do_not_depend_on_lapacks_choices():
    """Order ties and eigenvector phases are decided by the matrix, not by LAPACK's path.

    LAPACK returns an eigenvector up to a unit scalar (a sign if real) and equal moduli in
    the order its code path meets them: both differed between Intel and AMD CPUs. So the
    same operator in another basis order (a permutation ``P J Pᵀ``, whose eigenvectors are
    those of ``J`` permuted) must give the same modes, in the same order, with the same
    vectors: ``λ`` before ``−λ``, and each vector with the phase that makes its projection
    on the fixed generic direction real and positive.
    """
    from rnnzoo_dynamics._canonical import generic_direction

    rng = np.random.default_rng(4)
    S = 6
    theta = 0.7
    block = 0.8 * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    D = scipy.linalg.block_diag(0.9, -0.9, block, 0.5, -0.2)  # 0.9 and -0.9: equal moduli
    V = np.eye(S) + 0.3 * rng.normal(size=(S, S))
    J = V @ D @ np.linalg.inv(V)
    base = eigendecomposition(J[None])
    lam = base.eigenvalues[0]
    np.testing.assert_allclose(lam[:2], [0.9, -0.9], atol=1e-12)  # lambda before -lambda
    u = generic_direction(S)
    proj = u @ base.right[0]
    np.testing.assert_allclose(proj.imag, 0.0, atol=1e-12)
    assert (proj.real > 0).all()
    np.testing.assert_allclose(base.right[0][:, 3], np.conj(base.right[0][:, 2]), atol=1e-12)
    for _ in range(6):
        perm = rng.permutation(S)
        P = np.eye(S)[perm]
        other = eigendecomposition((P @ J @ P.T)[None])
        np.testing.assert_allclose(other.eigenvalues[0], lam, atol=1e-12)
        # the permuted operator's vectors, put back in J's basis, with J's canonical phase
        back = P.T @ other.right[0]
        s = u @ back
        back = back * (np.conj(s) / np.abs(s))
        np.testing.assert_allclose(back, base.right[0], atol=1e-10)
        # and in its own basis they have its own canonical phase (the direction is fixed)
        own = generic_direction(S) @ other.right[0]
        np.testing.assert_allclose(own.imag, 0.0, atol=1e-12)
        assert (own.real > 0).all()


def test_stability_labels_with_tolerance():
    eps = 1e-3
    lam = np.array(
        [
            [0.5, 0.99, 0.2],  # stable
            [1.0005, 0.5, 0.2],  # marginal: within eps
            [1.01, 0.5, 0.2],  # saddle, one unstable
            [1.5, 1.2 + 0.5j, 1.2 - 0.5j],  # unstable in every mode
            [0.9995, 1.0 + 0.0j, np.nan],  # padding ignored
        ]
    )
    st = stability(lam, eps)
    assert st["n_unstable"].tolist() == [0, 0, 1, 3, 0]
    assert st["n_marginal"].tolist() == [0, 1, 0, 0, 2]
    assert list(st["stability"]) == ["stable", "marginal", "saddle", "unstable", "marginal"]


def _autograd_jacobian(cell, params, h, x, wrt):
    def f(v):
        if wrt == "h":
            return cell.step(params, v[None, None], x[None, None])[0, 0]
        return cell.step(params, h[None, None], v[None, None])[0, 0]

    return torch.autograd.functional.jacobian(f, h if wrt == "h" else x)


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_point_jacobians_match_autograd_for_every_cell(arch, activation):
    cell = get_cell(arch, activation, 5, 3, 2)
    nets = [cell.init_params(torch.Generator().manual_seed(s), torch.float64) for s in range(3)]
    params = stack_params(nets)
    rng = np.random.default_rng(1)
    network = np.array([0, 2, 2, 1, 0, 2])
    states = rng.normal(size=(6, cell.state_size)) * 0.5
    x = rng.normal(size=(6, 3))
    for wrt in ("h", "x"):
        J = point_jacobians(cell, params, network, states, x, wrt, max_block_elements=40)
        assert J.dtype == torch.float64
        for k in range(6):
            ref = _autograd_jacobian(
                cell,
                {n: v[network[k]][None] for n, v in params.items()},
                torch.as_tensor(states[k]),
                torch.as_tensor(x[k]),
                wrt,
            )
            np.testing.assert_allclose(J[k].numpy(), ref.numpy(), atol=1e-12)
    y = readout_at(cell, params, network, states)
    for k in range(6):
        p = {n: v[network[k]] for n, v in params.items()}
        ref = cell.readout(
            {n: v[None] for n, v in p.items()}, torch.as_tensor(states[k])[None, None]
        )
        np.testing.assert_allclose(y[k], ref[0, 0].numpy(), atol=1e-12)


def test_jacobians_never_build_the_joint_matrix():
    # 1,024 points at 256 units: the result is (1024, 256, 256); peak extra memory stays at
    # one block (checked through the block size: a tiny budget gives the same result)
    cell = get_cell("vanilla", "tanh", 16, 2, 1)
    params = stack_params([cell.init_params(torch.Generator().manual_seed(0), torch.float64)])
    rng = np.random.default_rng(2)
    states = rng.normal(size=(64, 16))
    x = np.zeros((64, 2))
    net = np.zeros(64, dtype=np.int64)
    big = point_jacobians(cell, params, net, states, x)
    small = point_jacobians(cell, params, net, states, x, max_block_elements=300)
    assert big.shape == (64, 16, 16)
    np.testing.assert_allclose(big.numpy(), small.numpy(), rtol=0, atol=1e-14)
    # a caller's buffer is filled in place (no new allocation)
    buf = torch.empty(64, 16, 16, dtype=torch.float64)
    again = point_jacobians(cell, params, net, states, x, out=buf)
    assert again.data_ptr() == buf.data_ptr()
    np.testing.assert_allclose(buf.numpy(), big.numpy(), rtol=0, atol=1e-14)


from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402

# entries are 0 or of magnitude >= 1e-6: LAPACK's balancing (geev) is inaccurate on graded
# matrices mixing O(1) and ~1e-100 entries, which Jacobians of these networks never are
ENTRIES = st.one_of(st.just(0.0), st.floats(1e-6, 3.0), st.floats(-3.0, -1e-6))


@settings(max_examples=60, deadline=None, database=None)
@given(st.integers(2, 7).flatmap(lambda n: arrays(np.float64, (n, n), elements=ENTRIES)))
def test_biorthonormal_decomposition_of_any_diagonalisable_matrix(J):
    eig = eigendecomposition(J[None])
    assume(eig.condition[0] < 1e6)  # defective matrices have no eigenbasis
    R, L, lam = eig.right[0], eig.left[0], eig.eigenvalues[0]
    tol = 1e-12 * eig.condition[0] * (1 + np.abs(J).max())
    np.testing.assert_allclose(L.conj().T @ R, np.eye(len(J)), atol=tol)
    np.testing.assert_allclose(R @ np.diag(lam) @ L.conj().T, J, atol=tol * 10)


def test_tiny_huge_and_non_finite_jacobians_do_not_raise():
    J = np.stack([np.full((3, 3), 4e-106), np.diag([1e200, 2e200, 3e200]), np.eye(3)])
    J[2, 0, 1] = np.nan
    eig = eigendecomposition(J)
    np.testing.assert_allclose(np.sort(np.abs(eig.eigenvalues[0])), [0, 0, 1.2e-105], atol=1e-118)
    np.testing.assert_allclose(np.abs(eig.eigenvalues[1]), [3e200, 2e200, 1e200])
    assert np.isnan(eig.eigenvalues[2]).all()
    st = stability(eig.eigenvalues)
    assert st["n_unstable"].tolist() == [0, 3, 0]


def test_linearize_in_blocks_gives_the_same_result_as_at_once():
    from rnnzoo_dynamics.fixed_points import FixedPoints
    from rnnzoo_dynamics.linearize import linearize

    cell = get_cell("gru", "tanh", 6, 2, 1)
    nets = [cell.init_params(torch.Generator().manual_seed(s), torch.float64) for s in (0, 1)]
    params = stack_params(nets)
    rng = np.random.default_rng(5)
    n = 23
    points = FixedPoints(
        network=rng.integers(0, 2, size=n),
        condition=rng.integers(0, 2, size=n),
        state=rng.normal(size=(n, 6)),
        q=np.zeros(n),
        kind=np.full(n, "fixed", dtype=object),
        n_merged=np.ones(n, np.int64),
        x_star=rng.normal(size=(2, 2)),
        candidate_q=np.zeros((2, 2, 1)),
    )
    whole = linearize(cell, params, points, keep_jacobians=True, max_block_elements=10**9)
    # one point per block; and blocks of 5 points that keep the Jacobians
    for mbe, keep in ((1, False), (5 * 36, True)):
        blocks = linearize(cell, params, points, keep_jacobians=keep, max_block_elements=mbe)
        # equal up to rounding (the Jacobians of a block are formed in another batch) and,
        # for eigenvectors, up to their phase: compare the mode projectors r_k l_k^H
        for name in ("eigenvalues", "condition", "biorthonormality_error"):
            a, b = getattr(blocks.eig, name), getattr(whole.eig, name)
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)

        def projectors(e):
            return np.einsum("nik,njk->nkij", e.right, e.left.conj())

        np.testing.assert_allclose(projectors(blocks.eig), projectors(whole.eig), atol=1e-10)
        np.testing.assert_array_equal(blocks.n_unstable, whole.n_unstable)
        # formed in another batch: preactivations (9 terms, sum|terms| <= 5.4) differ by
        # <= 9·u·5.4 = 5.4e-15, through the gates' second derivatives (<= 0.77) and |W| <= 1.6
        # times |h - c| <= 3 into a Jacobian entry: <= 2e-14 per term, a few terms: 1e-13
        np.testing.assert_allclose(blocks.input_jacobian, whole.input_jacobian, rtol=0, atol=1e-13)
        assert (blocks.jacobian_h is None) == (not keep)
    # the same bound as the input Jacobians' above
    np.testing.assert_allclose(
        blocks.jacobian_h.numpy(), whole.jacobian_h.numpy(), rtol=0, atol=1e-13
    )
    J = point_jacobians(cell, params, points.network, points.state, points.x_of_points())
    np.testing.assert_array_equal(whole.jacobian_h.numpy(), J.numpy())
    empty = linearize(cell, params, points.select(np.zeros(n, dtype=bool)))
    assert empty.eig.eigenvalues.shape == (0, 6)
