"""Settings shared by every test suite of the monorepo (collected from the repository root).

Hypothesis: no example database (several pytest-xdist workers writing one ``.hypothesis``
directory at once crashed a worker), no per-example deadline (CI machines are shared and
slow examples are not failures), and derandomised search, so that a CI run is reproducible:
the same examples on every run, a failure always reproducible from a clean clone.
"""

from __future__ import annotations

try:
    from hypothesis import settings
except ImportError:  # pragma: no cover - a suite without hypothesis installed
    settings = None

if settings is not None:
    settings.register_profile("rnnzoo", database=None, deadline=None, derandomize=True)
    settings.load_profile("rnnzoo")
