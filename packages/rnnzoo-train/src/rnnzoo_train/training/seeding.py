"""Where every random number of a network comes from.

A network is a pure function of (task, configuration, hyper-parameters, seed, package
version). Its randomness comes from one :class:`numpy.random.SeedSequence` built from its
seed and stable hashes of its task name, configuration key and role (zoo seed or search
trial), spawned into two independent children:

- the *initialisation* stream (a ``torch.Generator``, consumed by ``Cell.init_params``);
- the *data* stream (a NumPy ``Generator``, consumed by ``Task.sample``, one training batch
  per iteration).

Nothing depends on the population a network is trained in, on the process or on the order of
work units, so a network trained alone, in a population, resumed or on another worker is
drawn from the same numbers. Validation and test sets are fixed per task (independent of the
network), so every network and search trial is scored on the same trials.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

from rnnzoo_train.records import NetworkSpec

_ROLE = {"seed": 0, "trial": 1}
#: entropy of the per-task evaluation sets (validation, test)
EVALUATION_ENTROPY = 20_191_208


def stable_hash(text: str) -> int:
    """A 32-bit hash of ``text`` that is the same in every process (unlike ``hash``)."""
    return zlib.crc32(text.encode("utf-8"))


def network_seed_sequence(spec: NetworkSpec) -> np.random.SeedSequence:
    """The root seed sequence of one network (see the module docstring)."""
    key = (
        stable_hash(spec.task),
        stable_hash(spec.config.key),
        _ROLE[spec.role],
        max(spec.trial, 0),
    )
    return np.random.SeedSequence(entropy=int(spec.seed), spawn_key=key)


def network_streams(spec: NetworkSpec) -> tuple[torch.Generator, np.random.Generator]:
    """``(init_generator, data_rng)`` of one network."""
    init_ss, data_ss = network_seed_sequence(spec).spawn(2)
    init_seed = int(init_ss.generate_state(1, np.uint64)[0] >> np.uint64(1))
    return torch.Generator().manual_seed(init_seed), np.random.default_rng(data_ss)


def evaluation_rng(task: str, split: str) -> np.random.Generator:
    """The generator of a task's fixed ``"validation"`` or ``"test"`` set."""
    split_key = {"validation": 1, "test": 2}[split]
    return np.random.default_rng(
        np.random.SeedSequence(EVALUATION_ENTROPY, spawn_key=(stable_hash(task), split_key))
    )


def search_rng(task: str, config_key: str) -> np.random.Generator:
    """The generator of one configuration's random hyper-parameter draws."""
    return np.random.default_rng(
        np.random.SeedSequence(
            EVALUATION_ENTROPY, spawn_key=(stable_hash(task), stable_hash(config_key), 3)
        )
    )
