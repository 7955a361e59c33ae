"""rnnzoo-neuro-extras: a task, its dynamics analysis and a cell type, as plugins.

- :class:`~rnnzoo_neuro_extras.tasks.HeadDirection` (task ``head_direction``):
  angular-velocity integration into a heading;
- :class:`~rnnzoo_neuro_extras.analysis.HeadDirectionAnalysis`: its ring-attractor analysis;
- :data:`~rnnzoo_neuro_extras.cells.MGU` (cell ``mgu``): the minimal gated unit.

Nothing here is imported by rnnzoo itself: ``pyproject.toml`` registers the three entry
points, and rnnzoo finds them by name (see ``docs/plugins.md`` of the rnnzoo repository).
"""

__version__ = "0.1.0"
