import numpy as np

from rnnzoo_paper import style


def test_colours_agree_with_the_packages_figures():
    from rnnzoo_dynamics.plots import PALETTE as DYNAMICS
    from rnnzoo_metrics.plotting import PALETTE as METRICS

    for name, value in style.PALETTE.items():
        if name in METRICS:
            assert METRICS[name] == value, name
        if name in DYNAMICS:
            assert DYNAMICS[name] == value, name
    # one distinct colour per architecture and per activation
    keys = [*style.ARCH_ORDER, *style.ACTIVATION_ORDER]
    assert len({style.colour(k) for k in keys}) == len(keys)


def test_paper_order_and_labels():
    values = np.array(["relu", "lstm", "gru", "tanh", "vanilla", "ugrnn", "gru"], dtype=object)
    assert style.ordered(values) == ["vanilla", "ugrnn", "gru", "lstm", "tanh", "relu"]
    assert style.label("ugrnn") == "UGRNN"
    assert style.cell_label("gru", "relu") == "GRU relu"
