import pytest

from rnnzoo_metrics.synthetic import low_rank_networks


@pytest.fixture
def nets():
    """Six synthetic networks with shared low-dimensional structure and mixed widths."""
    return low_rank_networks(n_networks=6, samples=120, widths=(8, 12), seed=0)
