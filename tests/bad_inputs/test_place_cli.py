"""``rnnzoo-dynamics place``: every malformed input refused in one line.

Rows run through the shared harness (``conftest.py``): exit status != 0, one line on stderr
naming the problem, no traceback, the sandbox unchanged (no output folder, nothing in the
zoo, no ``__pycache__`` beside the user's model file). The user's model files are written by
each row's ``setup`` (:func:`_model_files`) before the snapshot is taken.
"""

from __future__ import annotations

from pathlib import Path

import pytest

D = "rnnzoo-dynamics"
ZOO = "zoo.zarr"

MODELS = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, inputs=3, outputs=3):
        super().__init__()
        self.rnn = nn.GRU(inputs, 8, batch_first=True)
        self.readout = nn.Linear(8, outputs)


def make():
    return Net()


def two_inputs():
    return nn.GRU(2, 8, batch_first=True)


def bad_readout():
    return Net(outputs=2)


def deep():
    return nn.GRU(3, 8, num_layers=2)


def both_ways():
    return nn.GRU(3, 8, bidirectional=True)


def explode():
    raise RuntimeError("out of coffee")


def text():
    return "a GRU"


def three():
    return nn.GRU(3, 8), nn.Linear(8, 3), None


class Wrong(nn.Module):
    state_size = 8
    n_inputs = 3

    def forward(self, x):  # not F(h, x)
        return x


def wrong_signature():
    return Wrong()
"""


def _model_files(sandbox: Path) -> None:
    """``models.py`` (factories), ``broken.py``, weights files, TorchScript and export files."""
    import torch
    from torch import nn

    (sandbox / "models.py").write_text(MODELS)
    (sandbox / "broken.py").write_text("import nosuchpackage_for_rnnzoo\n")
    torch.save(nn.GRU(3, 8, batch_first=True).state_dict(), sandbox / "gru.pt")
    torch.save(nn.Linear(4, 4).state_dict(), sandbox / "other.pt")
    torch.save(nn.Linear(4, 4), sandbox / "pickled.pt")  # a whole pickled module
    torch.jit.save(torch.jit.script(nn.GRU(3, 8, batch_first=True)), sandbox / "gru.ts")
    (sandbox / "bad.pt2").write_text("not a torch.export program\n")


def _read_only_folder(sandbox: Path) -> None:
    _model_files(sandbox)
    (sandbox / "ro").mkdir()


def row(argv, expect=(), id=None, *, base=True, **options):
    start = ["place", "--zoo", ZOO, "--task", "flipflop"] if base else ["place"]
    options.setdefault("setup", _model_files)
    return pytest.param([D, *start, *argv], tuple(expect), options, id=id)


GOOD = ["--model", "models.py:make", "--rnn", "rnn", "--readout", "readout"]
OUT = ["--out", "placed"]

CASES = [
    # the zoo and the task
    row(
        ["--zoo", "missing.zarr", "--task", "flipflop", *GOOD, *OUT],
        ["no zoo at"],
        "missing-zoo",
        base=False,
    ),
    row(
        ["--zoo", "text.txt", "--task", "flipflop", *GOOD, *OUT],
        ["text.txt"],
        "zoo-a-file",
        base=False,
    ),
    row(
        ["--zoo", "notzoo.zarr", "--task", "flipflop", *GOOD, *OUT],
        ["not an rnnzoo zoo"],
        "zoo-not-a-zoo",
        base=False,
    ),
    row(
        ["--zoo", "truncated.zarr", "--task", "flipflop", *GOOD, *OUT],
        ["truncated.zarr"],
        "zoo-truncated",
        base=False,
    ),
    row(
        ["--zoo", "fake.zip", "--task", "flipflop", *GOOD, *OUT],
        ["fake.zip"],
        "zoo-zip-not-a-zip",
        base=False,
    ),
    row(
        ["--zoo", ZOO, "--task", "nosuch", *GOOD, *OUT],
        ["no task 'nosuch'"],
        "unknown-task",
        base=False,
    ),
    row(["--zoo", ZOO, *GOOD, *OUT], ["--task"], "no-task", base=False),
    row(
        ["--analysis-store", "notes", *GOOD, *OUT],
        ["not an analysis store"],
        "analysis-store-not-a-store",
    ),
    # the output folder: never the zoo, never someone else's files
    row([*GOOD, "--out", "text.txt"], ["is a file"], "out-a-file"),
    row([*GOOD, "--out", ZOO], ["inside the zoo"], "out-the-zoo"),
    row([*GOOD, "--out", f"{ZOO}/placed"], ["inside the zoo"], "out-inside-the-zoo"),
    row([*GOOD, "--out", "notzoo.zarr"], ["zarr store"], "out-a-zarr-store"),
    row([*GOOD, "--out", "notes"], ["already holds other files"], "out-user-folder"),
    row(
        [*GOOD, "--out", "ro/placed"],
        ["not writable"],
        "out-read-only",
        setup=_read_only_folder,
        read_only=("ro",),
    ),
    row(GOOD, ["--out"], "no-out"),
    # the model spec
    row(["--model", "nosuch", *OUT], ["neither a file nor module:factory"], "model-neither"),
    row(["--model", "nosuch_rnnzoo_module:make", *OUT], ["cannot import"], "model-no-module"),
    row(["--model", "models.py:nosuch", *OUT], ["has no 'nosuch'"], "model-no-factory"),
    row(["--model", "missing.py:make", *OUT], ["no file missing.py"], "model-no-file"),
    row(["--model", "broken.py:make", *OUT], ["broken.py", "failed"], "model-file-fails"),
    row(
        ["--model", "models.py:explode", *OUT], ["raised", "out of coffee"], "model-factory-raises"
    ),
    row(["--model", "models.py:text", *OUT], ["not a model"], "model-factory-returns-str"),
    row(["--model", "models.py:three", *OUT], ["tuple of 3"], "model-factory-returns-3"),
    row(["--model", "text.txt", *OUT], ["not a torchscript file"], "model-text-file"),
    row(["--model", "fake.zip", *OUT], ["not a torchscript file"], "model-fake-zip"),
    row(["--model", "gru.pt", *OUT], ["not a torchscript file"], "model-a-state-dict"),
    row(["--model", "bad.pt2", *OUT], ["not a torch.export program"], "model-bad-export"),
    # the weights
    row([*GOOD, "--weights", "missing.pt", *OUT], ["no weights file"], "weights-missing"),
    row([*GOOD, "--weights", "text.txt", *OUT], ["cannot read --weights"], "weights-text"),
    row(
        [*GOOD, "--weights", "pickled.pt", *OUT],
        ["cannot read --weights"],
        "weights-pickled-module",
    ),
    row([*GOOD, "--weights", "other.pt", *OUT], ["does not fit"], "weights-do-not-fit"),
    row(
        ["--model", "gru.ts", "--weights", "gru.pt", *OUT],
        ["carries its own weights"],
        "weights-with-torchscript",
    ),
    row(
        ["--model", "models.py:three", "--weights", "gru.pt", *OUT],
        ["tuple"],
        "weights-for-a-tuple",
    ),
    # parts of the model
    row(
        ["--model", "models.py:make", "--rnn", "encoder", *OUT],
        ["has no 'encoder'", "rnn"],
        "rnn-no-such-part",
    ),
    row(
        ["--model", "models.py:make", "--rnn", "rnn", "--readout", "head", *OUT],
        ["has no 'head'"],
        "readout-no-such-part",
    ),
    # the model does not fit the task or is not recurrent
    row(
        ["--model", "models.py:two_inputs", *OUT],
        ["takes 2 inputs", "3 inputs and 3 outputs"],
        "wrong-input-size",
    ),
    row(
        ["--model", "models.py:bad_readout", "--rnn", "rnn", "--readout", "readout", *OUT],
        ["readout has 2 outputs", "3 inputs and 3 outputs"],
        "wrong-output-size",
    ),
    row(["--model", "models.py:deep", *OUT], ["num_layers=2"], "two-layers"),
    row(["--model", "models.py:both_ways", *OUT], ["bidirectional"], "bidirectional"),
    row(["--model", "models.py:wrong_signature", *OUT], ["step function"], "not-a-step-function"),
    # options
    row(
        [*GOOD, *OUT, "--name", "vanilla-tanh-u8-l2_1e-04-s000"],
        ["id of a network of the zoo"],
        "name-a-zoo-id",
    ),
    row([*GOOD, *OUT, "--jobs", "0"], ["--jobs must be >= 1"], "jobs-0"),
]


@pytest.mark.parametrize(("argv", "expect", "options"), CASES)
def test_refused(refused, argv, expect, options):
    refused(argv, expect, **options)


def test_the_good_command_line_of_these_rows_works(sandbox, run_cli):
    """The rows' own good command line is accepted: each row fails for its one mistake."""
    _model_files(sandbox)
    result = run_cli([D, "place", "--zoo", ZOO, "--task", "flipflop", *GOOD, *OUT, "--quiet"])
    assert result.code == 0, result.stderr
    assert (sandbox / "placed" / "placement.png").is_file()
    assert not list(sandbox.glob("__pycache__"))
