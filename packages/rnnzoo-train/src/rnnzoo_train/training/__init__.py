"""Training: SGD with momentum, exponential learning-rate decay, clipping, L2, batch 64.

- :func:`train_population` trains many networks of one cell type and width at once (fused
  forward and hand-written BPTT batched over the population, :mod:`.kernels`, chosen by
  :mod:`.selection` from the architecture's descriptor);
- :func:`train_network` trains one network alone (a population of one, same numbers);
- on a GPU (``device="cuda"``) both train with the autograd kernel of :mod:`.device_kernel`.

See ``docs/training.md`` for the procedure, divergence handling and determinism.
"""

from __future__ import annotations

from rnnzoo_train.optional import require_torch

require_torch("training (rnnzoo_train.training)")  # one line where torch is not installed

from .engine import evaluate, evaluation_set, train_network, train_population  # noqa: E402
from .kernels import SequenceKernel  # noqa: E402
from .optimiser import PopulationSGD  # noqa: E402
from .schedules import exponential_decay  # noqa: E402
from .seeding import network_streams  # noqa: E402
from .selection import KERNELS, make_kernel  # noqa: E402

__all__ = [
    "KERNELS",
    "PopulationSGD",
    "SequenceKernel",
    "evaluate",
    "evaluation_set",
    "exponential_decay",
    "make_kernel",
    "network_streams",
    "train_network",
    "train_population",
]
