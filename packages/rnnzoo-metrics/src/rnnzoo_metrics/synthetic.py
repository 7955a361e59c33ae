"""Synthetic "networks" for tests, demos and benchmarks (no training needed).

Trained RNN hidden states are smooth functions of a low-dimensional task state; these
generators mimic that: a shared latent trajectory ``z`` (samples x latent) is mapped by
each network through its own random readin and a nonlinearity, plus optional noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def latent_trajectory(samples: int, latent: int, seed: int = 0) -> np.ndarray:
    """Smooth shared latent states: random mixtures of slow sinusoids, ``(samples, latent)``."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, samples)[:, None]
    freqs = rng.uniform(0.5, 4.0, size=(1, latent))
    phases = rng.uniform(0, 2 * np.pi, size=(1, latent))
    return np.sin(2 * np.pi * freqs * t + phases) + 0.3 * rng.normal(size=(1, latent))


def network(
    z: np.ndarray,
    units: int,
    seed: int,
    activation: str = "tanh",
    noise: float = 0.0,
    gain: float = 1.0,
) -> np.ndarray:
    """One synthetic network's activations ``(samples, units)`` driven by latent ``z``."""
    rng = np.random.default_rng(seed)
    w = gain * rng.normal(size=(z.shape[1], units)) / np.sqrt(z.shape[1])
    pre = z @ w + 0.2 * rng.normal(size=units)
    if activation == "tanh":
        h = np.tanh(pre)
    elif activation == "relu":
        h = np.maximum(pre, 0.0)
    elif activation == "linear":
        h = pre
    else:
        raise ValueError(f"unknown activation {activation!r}")
    if noise:
        h = h + noise * rng.normal(size=h.shape)
    return h


def low_rank_networks(
    n_networks: int = 6,
    samples: int = 120,
    widths: Sequence[int] = (8, 12),
    latent: int = 4,
    seed: int = 0,
    noise: float = 0.05,
    activation: str = "tanh",
) -> list[np.ndarray]:
    """A list of synthetic networks sharing one latent trajectory, with mixed widths."""
    z = latent_trajectory(samples, latent, seed)
    return [
        network(z, widths[i % len(widths)], seed * 100_003 + i + 1, activation, noise)
        for i in range(n_networks)
    ]


class LazyNetworks(Sequence):
    """A lazily generated population (nothing kept in memory): ``nets[i]`` builds network i.

    Useful to run the engine on thousands of networks with bounded memory.
    """

    def __init__(
        self,
        n_networks: int,
        samples: int,
        widths: Sequence[int],
        latent: int = 6,
        seed: int = 0,
        noise: float = 0.0,
        activations: Sequence[str] = ("tanh",),
    ):
        self.n, self.widths, self.noise, self.seed = n_networks, tuple(widths), noise, seed
        self.activations = tuple(activations)
        self.z = latent_trajectory(samples, latent, seed)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self.n))]
        if not 0 <= i < self.n:
            raise IndexError(i)
        act = self.activations[i % len(self.activations)]
        return network(
            self.z, self.widths[i % len(self.widths)], self.seed * 100_003 + i + 1, act, self.noise
        )
