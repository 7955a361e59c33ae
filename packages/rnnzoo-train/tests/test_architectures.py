"""One descriptor per architecture (issue 12 section 2): what it declares is what the cell,
the kernels, the zoo writer and the figures do, and everything reads it from there."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rnnzoo_train.cells import (
    ACTIVATIONS,
    ARCHITECTURES,
    DISPLAY_NAMES,
    N_GATES,
    PALETTE,
    Architecture,
    available_architectures,
    colour,
    display_name,
    get_architecture,
    get_cell,
    param_shapes,
)
from rnnzoo_train.cells.base import Cell
from rnnzoo_train.cells.builtin import BUILTIN
from rnnzoo_train.training import native
from rnnzoo_train.training.device_kernel import AutogradKernel
from rnnzoo_train.training.selection import bytes_per_network, kernel_class, make_kernel

ROOT = Path(__file__).resolve().parents[3]
SRC = ROOT / "packages"


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_the_descriptor_is_what_the_cell_and_its_kernels_do(arch):
    d = get_architecture(arch)
    assert d is BUILTIN[arch]
    assert d.name == arch
    assert d.plugin is None
    cell = get_cell(arch, "tanh", 5, 3, 2)
    assert type(cell) is d.cell_class()
    assert cell.arch == arch
    assert tuple(cell.gates) == d.gates
    assert N_GATES[arch] == d.n_gates == cell.n_gates
    assert param_shapes(arch, 5, 3, 2) == d.param_shapes(5, 3, 2) == cell.param_shapes()
    assert list(d.param_shapes(5, 3, 2)) == list(cell.init_params(torch.Generator()))
    assert d.state_size(5) == cell.state_size
    assert d.kernels == ("native", "eager", "autograd")
    for backend in ("eager", "native"):
        kernel = d.kernel_class(backend)
        assert kernel.arch == arch
        assert kernel.backend == backend
    # closed forms: the cell overrides Cell's autograd default (when the default exists)
    assert d.closed_form_jacobians
    for name in ("jacobian_h", "jacobian_x"):
        assert getattr(type(cell), name) is not getattr(Cell, name, None)
    assert DISPLAY_NAMES[arch] == d.display_name == display_name(arch)
    assert PALETTE[arch] == d.colour == colour(arch)


def test_the_palette_is_the_papers_tab10_and_every_colour_is_distinct():
    assert ARCHITECTURES == ("vanilla", "ugrnn", "gru", "lstm")
    assert available_architectures()[:4] == list(ARCHITECTURES)
    assert [PALETTE[a] for a in ARCHITECTURES] == ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    assert (PALETTE["tanh"], PALETTE["relu"]) == ("#9467bd", "#8c564b")
    keys = [*ARCHITECTURES, *ACTIVATIONS, "trained", "untrained"]
    assert len({colour(k) for k in keys}) == len(keys)
    assert colour("TANH") == PALETTE["tanh"]
    assert colour("nope") == "#555555"
    assert display_name("tanh") == "tanh"


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_make_kernel_picks_the_classes_it_picked_before(arch, monkeypatch):
    """The descriptors name the same kernels the old KERNELS / NATIVE_KERNELS tables held."""
    monkeypatch.delenv(native.BACKEND_ENV, raising=False)
    cell = get_cell(arch, "relu", 4, 3, 2)
    eager = make_kernel(cell, 2, 3, 4, backend="eager")
    assert type(eager) is kernel_class(arch, "eager")
    assert type(eager).__name__ == f"{type(cell).__name__.removesuffix('Cell')}Kernel"
    assert type(make_kernel(cell, 2, 3, 4, torch.float64)) is kernel_class(arch, "eager")
    assert type(make_kernel(cell, 2, 3, 4, backend="autograd")) is AutogradKernel
    if native.library() is not None:
        assert type(make_kernel(cell, 2, 3, 4)) is kernel_class(arch, "native")
        assert type(make_kernel(cell, 2, 3, 4)).__name__ == "Native" + type(eager).__name__


# -- an architecture declared outside the package (no kernels, no closed forms) -------------
class _Leaky(Cell):
    """``h' = (1 - a) h + a act(x W_x + h W_h + b)`` with ``a = 0.5``: not a packed cell."""

    arch = "leaky"

    def param_shapes(self):
        return _leaky_layout(self.n_units, self.n_inputs, self.n_outputs)

    def init_params(self, generator, dtype=torch.float32):
        return {
            k: 0.3 * torch.randn(s, generator=generator, dtype=torch.float64).to(dtype)
            for k, s in self.param_shapes().items()
        }

    def step(self, params, h, x):
        act = torch.tanh if self.activation == "tanh" else torch.relu
        a = torch.baddbmm(params["b"].unsqueeze(1), x, params["W_x"])
        return 0.5 * h + 0.5 * act(a + torch.bmm(h, params["W_h"]))


def _leaky_layout(n, m, k):
    return {"W_x": (m, n), "W_h": (n, n), "b": (n,), "W_out": (n, k), "b_out": (k,)}


LEAKY = Architecture(name="leaky", cell=_Leaky, layout=_leaky_layout, colour="#bcbd22")


def test_a_descriptor_without_kernels_trains_with_the_autograd_kernel(monkeypatch):
    """The default CPU backend falls back to autograd instead of raising (it used to raise
    'no training kernel for architecture'); so do explicit eager and native requests."""
    assert LEAKY.kernels == ("autograd",)
    assert not LEAKY.closed_form_jacobians
    assert LEAKY.display_name == "LEAKY"
    assert LEAKY.gates == ("candidate",)
    from rnnzoo_train.cells import registry

    monkeypatch.setattr(registry, "BUILTIN", {**registry.BUILTIN, "leaky": LEAKY})
    cell = _Leaky(4, 3, 2, "tanh")
    for backend in (None, "auto", "eager", "native", "autograd"):
        assert type(make_kernel(cell, 2, 3, 5, backend=backend)) is AutogradKernel
    assert kernel_class("leaky", "native") is AutogradKernel
    assert bytes_per_network("leaky", 8, 16, 10) == AutogradKernel.bytes_per_network(8, 1, 16, 10)
    # the autograd kernel runs a non-packed cell through its step: outputs equal Cell.run's
    params = {k: v[None].expand(2, *v.shape).clone() for k, v in cell.init_params(
        torch.Generator().manual_seed(1)).items()}  # fmt: skip
    x = torch.randn(2, 3, 5, 3, generator=torch.Generator().manual_seed(2))
    kernel = make_kernel(cell, 2, 3, 5)
    xa = torch.cat([x, torch.ones(2, 3, 5, 1)], -1).permute(0, 2, 3, 1)  # (P, T, M + 1, B)
    with torch.no_grad():
        y = kernel.forward(params, xa)
    states = cell.run(params, x)
    expected = cell.readout(params, states.reshape(2, 15, 4)).reshape(2, 3, 5, 2)
    torch.testing.assert_close(y, expected.permute(0, 2, 3, 1), rtol=0, atol=1e-6)


def test_descriptor_validation():
    with pytest.raises(ValueError, match="lower case"):
        Architecture(name="My-Cell", cell=_Leaky)
    bad = dataclasses.replace(LEAKY, name="other")
    with pytest.raises(TypeError, match="has arch 'leaky', not 'other'"):
        bad.cell_class()
    with pytest.raises(ValueError, match="unknown architecture 'nope'; choose one of vanilla"):
        get_architecture("nope")
    with pytest.raises(ValueError, match="unknown architecture 'nope'"):
        get_cell("nope", "tanh", 2, 2, 2)


# -- torch-free, and nothing else enumerates the architectures -------------------------------
def test_the_catalogue_and_registry_need_no_torch():
    code = (
        "import sys\n"
        "from rnnzoo_train.cells import catalog, get_architecture, colour\n"
        "assert catalog.param_shapes('gru', 4, 3, 2)['b_hn'] == (4,)\n"
        "assert get_architecture('lstm').state_size(3) == 6 and colour('gru') == '#2ca02c'\n"
        "assert catalog.available_architectures()[:4] == list(catalog.ARCHITECTURES)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


#: a literal naming all four architectures is a second place that lists them
ENUMERATIONS = set(ARCHITECTURES)


def _literals_listing_every_architecture(path: Path) -> list[int]:
    tree = ast.parse(path.read_text())
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
        elif isinstance(node, ast.Tuple | ast.List | ast.Set):
            keys = {e.value for e in node.elts if isinstance(e, ast.Constant)}
        else:
            continue
        if keys >= ENUMERATIONS:
            lines.append(node.lineno)
    return lines


def test_no_module_but_the_builtins_lists_the_architectures():
    """The gate counts of generate.py, KERNELS, NATIVE_KERNELS and the display-name and
    colour tables of the dynamics plots, rnnzoo-metrics' plots and the paper's style used to
    repeat the list (the palette was written three times)."""
    roots = [
        SRC / "rnnzoo-train" / "src",
        SRC / "rnnzoo-dynamics" / "src",
        SRC / "rnnzoo-metrics" / "src",
        ROOT / "paper" / "src",
    ]
    found = {
        str(path.relative_to(ROOT)): lines
        for root in roots
        for path in sorted(root.rglob("*.py"))
        if (lines := _literals_listing_every_architecture(path))
    }
    assert found == {}, found
