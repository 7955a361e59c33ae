"""Load a user's recurrent model from the command line (``rnnzoo-dynamics place --model``).

Two formats, because they are what people in this field actually have:

- ``package.module:factory`` or ``path/to/file.py:factory``: a Python callable that returns
  the model, optionally with ``--weights FILE``, a ``state_dict`` saved with
  ``torch.save(model.state_dict(), FILE)`` (a checkpoint dict holding it under
  ``"state_dict"`` or ``"model_state_dict"``, as PyTorch Lightning and the PyTorch tutorials
  save it, is read too). This is how PyTorch recommends saving models and how lab and paper
  code ships them (a model class plus a checkpoint); it is also the only way to rebuild an
  arbitrary step function ``F(h, x) -> h`` (e.g. a continuous-time rate network). The
  weights are read with ``torch.load(..., weights_only=True)``: no pickled code runs.
- a TorchScript file (``torch.jit.save``): self-contained, no code needed, and what most
  shared checkpoints of the last years are. A scripted ``nn.RNN`` / ``nn.GRU`` /
  ``nn.LSTM`` (or one inside a scripted module, picked with ``--rnn``) is rebuilt as the
  torch module with exactly its weights, so it is analysed with the closed-form Jacobians;
  any other scripted module is used as a step function. (torch >= 2.10 deprecates
  TorchScript in favour of ``torch.export``; a ``.pt2`` file of ``torch.export.save``
  holding a step function ``F(h, x)`` exported with a dynamic batch dimension is accepted
  too. An exported ``nn.GRU`` loses its class, so export the step function, or give the
  factory and weights.)

Whole pickled modules (``torch.save(model)``) are not accepted: loading one runs arbitrary
code and breaks when the class moves; save the ``state_dict`` instead.

The factory may return the model, or a tuple ``(model, readout)``. ``--rnn ATTR`` and
``--readout ATTR`` pick submodules of what was loaded (dotted paths, e.g. ``encoder.rnn``),
for the common case of one ``nn.Module`` holding an ``nn.GRU`` and an ``nn.Linear``.

Every problem is a one-line :class:`ModelFileError` naming the file or spec and what to do.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: how a model spec names a callable: ``module.path:attr`` or ``file.py:attr``
SPEC = re.compile(r"^(?P<where>[^:]+):(?P<attr>[A-Za-z_][\w.]*)$")
#: checkpoint keys that hold a state_dict
STATE_DICT_KEYS = ("state_dict", "model_state_dict")
#: files of ``torch.export.save`` (a step function exported with a dynamic batch dimension)
EXPORTED_SUFFIX = ".pt2"
#: torch modules a scripted module is rebuilt as (TorchScript keeps their class name)
SCRIPTED_RNNS = ("RNN", "GRU", "LSTM", "RNNCell", "GRUCell", "LSTMCell")

FORMATS = (
    "package.module:factory or file.py:factory (a callable returning the model, or "
    "(model, readout); weights from --weights, a state_dict) or a TorchScript file "
    "(torch.jit.save)"
)


class ModelFileError(ValueError):
    """A model spec or file that cannot be loaded (one line: what is wrong, what to do)."""


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def load_model(
    spec: str, weights: str | None = None, rnn: str | None = None, readout: str | None = None
) -> tuple[Any, Any]:
    """The recurrent model and its readout named by a command line.

    Parameters
    ----------
    spec : str
        ``package.module:factory``, ``file.py:factory`` or a TorchScript file.
    weights : str, optional
        A ``state_dict`` file for the factory's module.
    rnn, readout : str, optional
        Dotted attribute paths of the recurrent model and of the readout inside the loaded
        module (default: the whole module, and no readout; a factory returning
        ``(model, readout)`` gives both).

    Returns
    -------
    (model, readout)
        ``readout`` is ``None`` when none was named.

    Raises
    ------
    ModelFileError
    """
    m = SPEC.match(spec)
    if m is not None and not Path(spec).is_file():
        if weights is not None and not Path(weights).is_file():
            raise ModelFileError(
                f"no weights file {weights}; give a state_dict saved with torch.save"
            )
        obj = _call_factory(spec, m["where"], m["attr"])
        if weights is not None:
            if isinstance(obj, tuple):
                raise ModelFileError(
                    f"--model {spec} returns a tuple; --weights needs a factory that returns "
                    "one module (pick its parts with --rnn and --readout)"
                )
            _load_weights(obj, weights, spec)
    elif Path(spec).is_file():
        if weights is not None:
            raise ModelFileError(
                f"{spec} is a TorchScript file and carries its own weights; leave --weights out"
            )
        obj = _torchscript(spec)
    else:
        raise ModelFileError(
            f"--model {spec!r} is neither a file nor module:factory; give {FORMATS}"
        )
    default_readout = None
    if isinstance(obj, tuple):
        if len(obj) != 2:
            raise ModelFileError(
                f"--model {spec} returned a tuple of {len(obj)}; return the model or "
                "(model, readout)"
            )
        obj, default_readout = obj
    model = _attr(obj, rnn, spec, "--rnn") if rnn else obj
    out = _attr(obj, readout, spec, "--readout") if readout else default_readout
    model = _unscript(model, spec)
    if out is not None:
        out = _unscript(out, spec)
    if not callable(model):
        raise ModelFileError(
            f"--model {spec} gave a {type(model).__name__}, not a model; it must give a torch "
            "recurrent module or a step function F(h, x) -> h (or (model, readout))"
        )
    return model, out


def _call_factory(spec: str, where: str, attr: str) -> Any:
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise ModelFileError(f"no file {where} for --model {spec}")
        module = _import_file(path, spec)
    else:
        try:
            module = _import_module(where)
        except ImportError as err:
            raise ModelFileError(
                f"cannot import {where!r} for --model {spec} ({_one_line(err)}); install it, "
                "or name a file: path/to/file.py:factory"
            ) from None
        except Exception as err:  # the user's module failed while importing
            raise ModelFileError(
                f"importing {where!r} for --model {spec} failed: {_one_line(err)}"
            ) from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ModelFileError(f"{where} has no {attr!r} (from --model {spec})")
        target = getattr(target, part)
    if not callable(target):
        raise ModelFileError(f"{where}:{attr} is a {type(target).__name__}, not a callable")
    try:
        return target()
    except Exception as err:  # the user's factory
        raise ModelFileError(f"--model {spec} raised {_one_line(err)}") from None


def _import_module(where: str) -> Any:
    """Import ``where`` with the working directory on ``sys.path`` (as ``python -m`` does).

    No ``__pycache__`` is written into the user's folders.
    """
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    before, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        return importlib.import_module(where)
    finally:
        sys.dont_write_bytecode = before
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def _import_file(path: Path, spec: str) -> Any:
    name = f"_rnnzoo_user_model_{abs(hash(str(path.resolve())))}"
    loader_spec = importlib.util.spec_from_file_location(name, path)
    if loader_spec is None or loader_spec.loader is None:  # pragma: no cover - .py files load
        raise ModelFileError(f"cannot load {path} as Python for --model {spec}")
    module = importlib.util.module_from_spec(loader_spec)
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)  # so that the file can import its neighbours
    sys.modules[name] = module
    before, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ there
    try:
        loader_spec.loader.exec_module(module)
    except Exception as err:  # the user's file
        sys.modules.pop(name, None)
        raise ModelFileError(
            f"running {path} for --model {spec} failed: {_one_line(err)}"
        ) from None
    finally:
        sys.dont_write_bytecode = before
        if folder in sys.path:
            sys.path.remove(folder)
    return module


def _load_weights(obj: Any, weights: str, spec: str) -> None:
    import pickle

    import torch

    if not hasattr(obj, "load_state_dict"):
        raise ModelFileError(
            f"--model {spec} returned a {type(obj).__name__}, which has no state_dict; "
            "--weights needs a torch module"
        )
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as err:
        raise ModelFileError(
            f"cannot read --weights {weights} as a state_dict saved with torch.save "
            f"({_one_line(err)})"
        ) from None
    if isinstance(state, Mapping):
        for key in STATE_DICT_KEYS:
            if isinstance(state.get(key), Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise ModelFileError(
            f"--weights {weights} holds a {type(state).__name__}, not a state_dict of tensors; "
            "save it with torch.save(model.state_dict(), FILE)"
        )
    try:
        obj.load_state_dict(state)
    except RuntimeError as err:
        text = " ".join(str(err).split())
        raise ModelFileError(
            f"--weights {weights} does not fit --model {spec}: {text[:300]}"
        ) from None


def _torchscript(path: str) -> Any:
    import torch

    if path.endswith(EXPORTED_SUFFIX):
        return _exported(path)
    try:
        if not zipfile.is_zipfile(path):
            raise ValueError("not a zip archive")
        return torch.jit.load(path, map_location="cpu")
    except (RuntimeError, ValueError, OSError) as err:
        raise ModelFileError(
            f"{path} is not a TorchScript file ({_one_line(err)}); give one saved with "
            "torch.jit.save, or a Python factory module:factory with --weights"
        ) from None


def _exported(path: str) -> Any:
    """A ``torch.export`` program (``.pt2``) as a callable module (a step function)."""
    import torch

    try:
        if not zipfile.is_zipfile(path):
            raise ValueError("not a zip archive")
        return torch.export.load(path).module()
    except Exception as err:  # torch.export raises many kinds on a foreign file
        raise ModelFileError(
            f"{path} is not a torch.export program ({_one_line(err)}); give one saved with "
            "torch.export.save, a TorchScript file, or module:factory with --weights"
        ) from None


def _attr(obj: Any, path: str, spec: str, option: str) -> Any:
    target = obj
    for part in path.split("."):
        if not hasattr(target, part):
            have = []
            if hasattr(target, "named_children"):
                have = [n for n, _ in target.named_children()]
            listed = f"; it has: {', '.join(have)}" if have else ""
            raise ModelFileError(f"{option} {path}: the model of {spec} has no {part!r}{listed}")
        target = getattr(target, part)
    return target


def _unscript(module: Any, spec: str) -> Any:
    """A scripted ``nn.RNN``/``GRU``/``LSTM`` (or Cell) rebuilt with exactly its weights."""
    import torch
    from torch import nn

    if not isinstance(module, torch.jit.ScriptModule):
        return module
    kind = getattr(module, "original_name", "")
    if kind == "Linear":
        w = module.weight
        b = getattr(module, "bias", None)
        lin = nn.Linear(w.shape[1], w.shape[0], bias=b is not None, dtype=w.dtype)
        lin.load_state_dict(dict(module.state_dict()))
        return lin
    if kind not in SCRIPTED_RNNS:
        return module  # a scripted step function: used as it is
    cls = getattr(nn, kind)
    try:
        if kind.endswith("Cell"):
            kwargs: dict[str, Any] = {"bias": bool(module.bias)}
            if kind == "RNNCell":
                kwargs["nonlinearity"] = str(module.nonlinearity)
            rebuilt = cls(int(module.input_size), int(module.hidden_size), **kwargs)
        else:
            kwargs = {
                "num_layers": int(module.num_layers),
                "bias": bool(module.bias),
                "batch_first": bool(module.batch_first),
                "bidirectional": bool(module.bidirectional),
            }
            if kind == "RNN":
                kwargs["nonlinearity"] = str(module.nonlinearity)
            rebuilt = cls(int(module.input_size), int(module.hidden_size), **kwargs)
        state = dict(module.state_dict())
        dtype = next(iter(state.values())).dtype if state else torch.float32
        rebuilt.to(dtype).load_state_dict(state)
    except (AttributeError, RuntimeError, TypeError) as err:
        raise ModelFileError(
            f"cannot rebuild the scripted nn.{kind} of {spec} ({_one_line(err)}); save its "
            "state_dict and give a factory instead"
        ) from None
    return rebuilt
