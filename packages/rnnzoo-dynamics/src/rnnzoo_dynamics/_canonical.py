"""Orders and signs that depend on the results, never on their rounding.

Two CPUs (Intel or AMD, AVX2 or AVX-512: different BLAS/LAPACK code paths) compute the same
fixed points and eigenvectors to ~1e-14, but anything decided by a quantity that is pure
rounding differs between them:

- the speed ``q`` of a polished fixed point is ~1e-30, noise, so listing fixed points by
  increasing ``q`` gave a different order on each machine (and with it every index into
  them, e.g. a graph node's ``graph_node_point``);
- an eigenvector is defined up to a unit scalar (a sign, or a complex phase), and which one
  LAPACK returns depends on its code path.

Both are fixed here against one generic direction ``u`` of state space (a seeded Gaussian
vector: numpy's generator gives the same numbers on every platform). Points are ordered by
their projection ``u · h``, which ties between two distinct points only by coincidence
(symmetric pairs ``±h`` get opposite keys), and each eigenvector ``v`` is scaled so that
``u · v`` is real and positive.
"""

from __future__ import annotations

import numpy as np

#: seed of the generic direction (any fixed value; changing it reorders stored results)
DIRECTION_SEED = 20191208


def generic_direction(size: int) -> np.ndarray:
    """A fixed unit vector of ``size`` entries with no special relation to any axis.

    Its first entry is positive (so one-dimensional states are listed in increasing order).
    """
    u = np.random.default_rng(DIRECTION_SEED).standard_normal(size)
    return u / (np.linalg.norm(u) * np.sign(u[0]))


def position_order(states: np.ndarray) -> np.ndarray:
    """Indices ordering points ``(n, S)`` by their projection on :func:`generic_direction`.

    Exact ties (the same point twice) fall back to the coordinates, lexicographically.
    """
    states = np.asarray(states, dtype=np.float64)
    if len(states) < 2:
        return np.arange(len(states), dtype=np.int64)
    key = states @ generic_direction(states.shape[1])
    return np.lexsort((*states.T[::-1], key)).astype(np.int64)


def phase_normalized(vectors: np.ndarray) -> np.ndarray:
    """Columns of ``vectors`` ``(..., S, k)`` scaled by unit scalars to make ``u · v`` real > 0.

    A column with ``u · v == 0`` (only by coincidence) is left as it is. Complex-conjugate
    columns stay conjugate (``u`` is real), and real columns stay real.
    """
    vectors = np.asarray(vectors)
    u = generic_direction(vectors.shape[-2])
    s = np.einsum("s,...sk->...k", u, vectors)
    mag = np.abs(s)
    phase = np.where(mag > 0, np.conj(s) / np.where(mag > 0, mag, 1.0), 1.0)
    return vectors * phase[..., None, :].astype(vectors.dtype)
