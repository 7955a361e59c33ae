"""rnnzoo-train: train populations of recurrent networks and store them as a versioned zoo.

The public entry points are re-exported here as they land:

- tasks: :func:`rnnzoo_train.tasks.get_task` (``flipflop``, ``sine``, ``cdi`` and plugins)
- cells: :func:`rnnzoo_train.cells.get_cell` (Vanilla, UGRNN, GRU, LSTM x tanh, relu)
- records and the writer interface: :mod:`rnnzoo_train.records`, :mod:`rnnzoo_train.writer`
- the zoo store: :func:`rnnzoo_train.zoo.open_zoo`
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rnnzoo-train")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"
