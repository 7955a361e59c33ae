"""The architecture registry: the built-ins plus the entry-point group ``rnnzoo_train.cells``.

A package adds an architecture by pointing an entry point at an
:class:`~rnnzoo_train.cells.architecture.Architecture`::

    [project.entry-points."rnnzoo_train.cells"]
    mgu = "my_package.cells:MGU"

It then trains (with the autograd kernel unless it declares its own), is stored in and
read back from zoos, and is analysed by rnnzoo-dynamics (through autograd Jacobians unless
its cell has closed forms). Entry points are read on every call (cheap), and a plugin's
module is imported only when its architecture is asked for, so a broken plugin cannot
break the others and names itself in the error. The built-in names cannot be taken over.

Torch-free: looking up a built-in, its shapes, name or colour never imports torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from .architecture import FALLBACK_COLOUR, Architecture
from .builtin import BUILTIN, OTHER_COLOURS

GROUP = "rnnzoo_train.cells"


class ArchitecturePluginError(RuntimeError):
    """A registered architecture plugin could not be loaded or is not an Architecture."""


def _entry_points() -> dict[str, list[EntryPoint]]:
    found: dict[str, list[EntryPoint]] = {}
    for ep in entry_points(group=GROUP):
        if ep.name in BUILTIN:
            continue  # the built-ins cannot be replaced
        same = found.setdefault(ep.name, [])
        if all(other.value != ep.value for other in same):  # one dist seen twice is fine
            same.append(ep)
    return found


def _distribution(ep: EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return None if dist is None else str(dist.metadata["Name"])


def available_architectures() -> list[str]:
    """Names of every architecture: the built-ins in the paper's order, then plugins sorted.

    Plugins are listed, not imported.
    """
    return [*BUILTIN, *sorted(_entry_points())]


def plugin_architectures() -> dict[str, str | None]:
    """Name -> providing distribution of every architecture registered by entry point."""
    return {name: _distribution(eps[0]) for name, eps in sorted(_entry_points().items())}


def is_registered(name: str) -> bool:
    """Whether ``name`` is a built-in or a registered architecture (nothing is imported)."""
    return name in BUILTIN or name in _entry_points()


def get_architecture(name: str) -> Architecture:
    """The :class:`Architecture` registered as ``name``.

    Raises
    ------
    ValueError
        ``name`` is not registered (the message lists the available architectures).
    ArchitecturePluginError
        The plugin is registered twice with different targets, fails to import, is not an
        :class:`Architecture` or declares another name (the message names the plugin).
    """
    name = str(name)
    if name in BUILTIN:
        return BUILTIN[name]
    registered = _entry_points()
    if name not in registered:
        names = ", ".join([*BUILTIN, *sorted(registered)])
        raise ValueError(
            f"unknown architecture {name!r}; choose one of {names} "
            f"(or install a package that registers it in the entry-point group {GROUP!r})"
        )
    eps = registered[name]
    if len(eps) > 1:
        targets = " and ".join(f"{ep.value!r}" for ep in eps)
        raise ArchitecturePluginError(
            f"architecture {name!r} is registered twice ({targets}); uninstall one of the packages"
        )
    ep = eps[0]
    where = f"architecture plugin {name!r} ({ep.value})"
    try:
        arch = ep.load()
    except Exception as exc:  # any import-time error of a third-party plugin
        raise ArchitecturePluginError(
            f"{where} failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(arch, Architecture):
        raise ArchitecturePluginError(
            f"{where} is not an rnnzoo_train.cells.Architecture (got {type(arch).__name__})"
        )
    if arch.name != name:
        raise ArchitecturePluginError(f"{where} declares the name {arch.name!r}, not {name!r}")
    if arch.plugin is None:
        arch = dataclasses.replace(arch, plugin=_distribution(ep))
    return arch


def _lookup(value: Any) -> Architecture | None:
    """The architecture named ``value``, or None (unknown or a broken plugin)."""
    name = str(value)
    if name in BUILTIN:
        return BUILTIN[name]
    if name in OTHER_COLOURS:
        return None
    try:
        return get_architecture(name) if name in _entry_points() else None
    except ArchitecturePluginError:
        return None


def colour(value: Any, default: str = FALLBACK_COLOUR) -> str:
    """The colour of an architecture, an activation, or ``trained`` / ``untrained``."""
    name = str(value).lower()
    if name in OTHER_COLOURS:
        return OTHER_COLOURS[name]
    arch = _lookup(name)
    return default if arch is None else arch.colour


def display_name(value: Any) -> str:
    """The display name of an architecture (``GRU``), or ``value`` itself (``tanh``)."""
    arch = _lookup(value)
    return str(value) if arch is None else arch.display_name


def palette(values: Iterable[Any] = ()) -> dict[str, str]:
    """The colours of the built-ins, the activations and of ``values`` (e.g. plugin names)."""
    out = {name: arch.colour for name, arch in BUILTIN.items()}
    out.update(OTHER_COLOURS)
    for v in values:
        out.setdefault(str(v), colour(v))
    return out
