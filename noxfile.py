"""Developer and user sessions for the rnnzoo monorepo.

``nox -s demo``   the main job: a default zoo, every analysis, figures and a report
``nox -s tests``  every package's tests, the cross-package tests and the example plugin
``nox -s lint``   ruff check and ruff format --check
``nox -s bench``  side-by-side speed benchmarks (``nox -s bench -- metrics`` runs one)
``nox -s isolated-metrics``  rnnzoo-metrics alone in a fresh environment: no torch, no zarr
``nox -s isolated-zoo``  rnnzoo-train without its torch extra: download, verify, info, open
``nox -s dsa-reference``  rnnzoo's DSA against the reference dsa-metric (torch), own env
``nox -s dsa-certificate``  how many DSA distances are the proven global optimum (no torch)

Every environment installs with ``-c constraints.txt`` so torch resolves to the pinned CPU
build and never to a multi-GB CUDA wheel.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

ROOT = Path(__file__).parent
CONSTRAINTS = ("-c", str(ROOT / "constraints.txt"))

# One BLAS/torch thread per process: parallelism comes from processes (DESIGN.md section 5).
THREADS = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "PYTHONUNBUFFERED": "1",
}

# Installable parts of the monorepo, in dependency order, with the extras each session needs.
PACKAGES = {
    "metrics": ("packages/rnnzoo-metrics", "[all,test]"),
    "train": ("packages/rnnzoo-train", "[torch,test]"),
    "dynamics": ("packages/rnnzoo-dynamics", "[test]"),
    "paper": ("paper", "[test]"),
}

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = False


def _existing(names: tuple[str, ...] = tuple(PACKAGES)) -> list[str]:
    """Package requirement strings for the parts of the monorepo that exist on disk."""
    reqs = []
    for name in names:
        path, extras = PACKAGES[name]
        if (ROOT / path / "pyproject.toml").exists():
            reqs.append(f"{ROOT / path}{extras}")
    return reqs


def _install_all(session: nox.Session, *extra: str) -> None:
    session.install(*CONSTRAINTS, "pip>=23")
    session.install(*CONSTRAINTS, *_existing(), *extra)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the whole test suite (tiny preset, small data; about 15 minutes on 2 cores)."""
    _install_all(session, "pytest-xdist")
    args = session.posargs or ["-n", "2", "--dist", "loadfile"]
    session.run("pytest", *args, env=THREADS)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff: lint and formatting."""
    session.install(*CONSTRAINTS, "ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def bench(session: nox.Session) -> None:
    """Speed benchmarks, each against a baseline run side by side in the same script."""
    _install_all(session)
    wanted = session.posargs
    scripts = sorted((ROOT / "benchmarks").glob("bench_*.py"))
    if wanted:
        scripts = [s for s in scripts if any(w in s.stem for w in wanted)]
    if not scripts:
        session.error(f"no benchmark matches {wanted!r}; see benchmarks/")
    for script in scripts:
        session.run("python", str(script), env=THREADS)


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: generate the demo zoo, run every analysis, write figures and a report."""
    _install_all(session)
    out = os.environ.get("RNNZOO_DEMO_OUT", str(ROOT / "results" / "demo"))
    session.run("rnnzoo-paper", "demo", "--out", out, *session.posargs, env=THREADS)


@nox.session(name="isolated-metrics")
def isolated_metrics(session: nox.Session) -> None:
    """Install rnnzoo-metrics alone and prove that torch and zarr are not pulled in."""
    session.install(*CONSTRAINTS, f"{ROOT / 'packages/rnnzoo-metrics'}[test]")
    session.run(
        "python",
        "-c",
        "import importlib.util as u, sys; "
        "bad = [m for m in ('torch', 'zarr', 'rnnzoo_train') if u.find_spec(m)]; "
        "sys.exit(f'rnnzoo-metrics pulled in {bad}') if bad else print('no torch, no zarr: ok')",
    )
    session.run(
        "pytest",
        str(ROOT / "packages/rnnzoo-metrics/tests"),
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(ROOT),
        env=THREADS,
    )


@nox.session(name="isolated-zoo")
def isolated_zoo(session: nox.Session) -> None:
    """Install rnnzoo-train without torch; download, verify, inspect and open zoos there.

    A plain ``pip install rnnzoo-train`` (no ``[torch]`` extra) must not pull torch in, and
    reading a zoo must work without it; torch-only features must say what to install.
    """
    session.install(*CONSTRAINTS, f"{ROOT / 'packages/rnnzoo-train'}[test]")
    session.run(
        "python",
        "-c",
        "import importlib.util as u, sys; "
        "bad = [m for m in ('torch',) if u.find_spec(m)]; "
        "sys.exit(f'rnnzoo-train without [torch] pulled in {bad}') if bad "
        "else print('rnnzoo-train installed without torch: ok')",
    )
    tests = ROOT / "packages/rnnzoo-train/tests"
    session.run(
        "pytest",
        str(tests / "test_without_torch.py"),
        str(tests / "test_download.py"),
        str(tests / "test_publish.py"),
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(ROOT),
        env=THREADS,
    )


def _with_zoo(session: nox.Session, args: list[str]) -> list[str]:
    """``args`` with ``--zoo``: the demo's zoo, else a tiny flip-flop zoo trained once."""
    if "--zoo" in args or "--synthetic" in args:
        return args
    zoo = ROOT / "results" / "demo" / "zoo.zarr"
    if not zoo.exists():
        zoo = Path(session.create_tmp()) / "zoo.zarr"
        if not zoo.exists():
            session.run(
                "rnnzoo-train", "generate", "--preset", "tiny", "--task", "flipflop",
                "--out", str(zoo), "--no-progress", env=THREADS,
            )  # fmt: skip
    return [*args, "--zoo", str(zoo)]


def _run_on_zoo(session: nox.Session, script: str) -> None:
    """``benchmarks/SCRIPT.py`` on a zoo (:func:`_with_zoo`), its report in ``results/``."""
    out = ROOT / "results" / f"{script}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    args = _with_zoo(session, list(session.posargs))
    session.run(
        "python", str(ROOT / "benchmarks" / f"{script}.py"), "--json", str(out), *args,
        env=THREADS,
    )  # fmt: skip


@nox.session(name="dsa-reference")
def dsa_reference(session: nox.Session) -> None:
    """rnnzoo's DSA against the reference ``dsa-metric`` (issue 13), in an env of its own.

    ``dsa-metric`` needs torch (pinned CPU build via constraints.txt); neither is ever a
    dependency of rnnzoo-metrics. Uses ``results/demo/zoo.zarr`` (``nox -s demo``) or
    ``-- --zoo PATH``; without either, trains a tiny flip-flop zoo first.
    """
    session.install(*CONSTRAINTS, "pip>=23")
    session.install(
        *CONSTRAINTS,
        f"{ROOT / 'packages/rnnzoo-metrics'}[all]",
        f"{ROOT / 'packages/rnnzoo-train'}[torch]",
        "dsa-metric==2.0.2",
        "torch",
    )
    _run_on_zoo(session, "dsa_reference")


@nox.session(name="dsa-certificate")
def dsa_certificate(session: nox.Session) -> None:
    """Which DSA distances are the certified global optimum (``benchmarks/dsa_certificate.py``).

    Uses ``results/demo/zoo.zarr`` (``nox -s demo``) or ``-- --zoo PATH`` (``-- --synthetic``:
    the DSA timing's random networks); without either, trains a tiny flip-flop zoo first.
    """
    _install_all(session)
    _run_on_zoo(session, "dsa_certificate")
