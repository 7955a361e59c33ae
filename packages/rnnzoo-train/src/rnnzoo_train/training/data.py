"""Trials from a task, laid out for the kernels: time-major, trial-minor, ones row appended.

Tasks produce batch-major NumPy arrays ``(batch, time, channels)``; the kernels
(:mod:`.kernels`) consume inputs ``(P, T, M + 1, B)`` (a last row of ones carries the bias)
and targets and masks ``(P, T, K, B)``: per network and step, channels are rows and trials
are the contiguous last axis.
"""

from __future__ import annotations

import numpy as np
import torch

from rnnzoo_train.tasks.base import TaskBatch


class PopulationBatch:
    """Preallocated input/target/mask arrays for ``P`` networks, ``B`` trials, ``T`` steps."""

    def __init__(self, n_networks: int, batch: int, n_steps: int, n_inputs: int, n_outputs: int):
        P, B, T = n_networks, batch, n_steps
        self.P, self.B, self.T = P, B, T
        self.xa = np.ones((P, T, n_inputs + 1, B), dtype=np.float32)
        self.targets = np.zeros((P, T, n_outputs, B), dtype=np.float32)
        self.mask = np.zeros((P, T, n_outputs, B), dtype=np.float32)
        self.torch_xa = torch.from_numpy(self.xa)
        self.torch_targets = torch.from_numpy(self.targets)
        self.torch_mask = torch.from_numpy(self.mask)

    def set(self, p: int, batch: TaskBatch, rows: slice | None = None) -> None:
        """Write ``batch`` (batch-major) into network ``p``'s slot (``rows``: trial range)."""
        rows = rows if rows is not None else slice(0, batch.inputs.shape[0])
        self.xa[p, :, :-1, rows] = batch.inputs.transpose(1, 2, 0)
        self.targets[p, :, :, rows] = batch.targets.transpose(1, 2, 0)
        self.mask[p, :, :, rows] = batch.mask.transpose(1, 2, 0)

    def clear_rows(self, start: int) -> None:
        """Zero inputs, targets and mask of trials ``start:`` (padding of a partial chunk)."""
        self.xa[:, :, :-1, start:] = 0.0
        self.targets[:, :, :, start:] = 0.0
        self.mask[:, :, :, start:] = 0.0

    def broadcast(self, batch: TaskBatch, start: int, stop: int) -> None:
        """Give every network trials ``start:stop`` of a shared ``batch`` (evaluation sets)."""
        n = stop - start
        if n < self.B:
            self.clear_rows(n)
        part = TaskBatch(
            batch.inputs[start:stop], batch.targets[start:stop], batch.mask[start:stop]
        )
        self.set(0, part, slice(0, n))
        self.xa[1:] = self.xa[0]
        self.targets[1:] = self.targets[0]
        self.mask[1:] = self.mask[0]
