"""Run the README's user stories exactly as written.

Every fenced block under "## User stories" runs, story by story, in a scratch folder:

- a block whose first line is ``# file: PATH`` is written to ``PATH``;
- ``bash`` blocks run with ``bash -e``; ``python`` blocks run with the Python of the story's
  environment;
- ``pip install rnnzoo-...`` (quoted or not, with extras or not: ``"rnnzoo-train[torch]"``)
  must name a package of this repository and extras that its ``pyproject.toml`` declares
  (the test environment already has them, editable); every other ``pip install`` (the plugin
  of story 2) runs for real, in a virtual environment of the story's own that sees the test
  environment's packages through a ``.pth`` file, so the shared environment is never
  modified;
- a ``python`` block whose first line starts with ``# no torch`` must run without importing
  torch (reading a zoo needs none);
- the port of story 1's local web server is replaced by a free one, so parallel runs of the
  suite do not collide.

Story 3 also checks that the metrics-only example never imports torch; story 4 that the
command and the Python call print the same table of nearest cell types.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: the packages of this repository, and where each one's pyproject.toml is
REPO_PACKAGES = {
    "rnnzoo-train": "packages/rnnzoo-train",
    "rnnzoo-metrics": "packages/rnnzoo-metrics",
    "rnnzoo-dynamics": "packages/rnnzoo-dynamics",
    "rnnzoo-paper": "paper",
}
REQUIREMENT = re.compile(r"""^(["']?)(?P<name>[A-Za-z0-9_.\-]+)(\[(?P<extras>[^\]]*)\])?\1$""")
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def stories() -> dict[str, list[tuple[str, str]]]:
    text = (ROOT / "README.md").read_text()
    assert "## User stories" in text
    section = text.split("## User stories", 1)[1].split("\n## ", 1)[0]
    out: dict[str, list[tuple[str, str]]] = {}
    for chunk in section.split("\n### ")[1:]:
        title = chunk.splitlines()[0].strip()
        out[title] = [(lang, body) for lang, body in FENCE.findall(chunk)]
    return out


def test_readme_has_the_two_commands_a_picture_and_four_stories():
    text = (ROOT / "README.md").read_text()
    head = text.split("## User stories")[0]
    assert "nox -s demo" in head
    assert "nox -s tests" in head
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", head, flags=re.S)
    assert pictures, "no picture before the user stories"
    for pic in pictures:
        data = (ROOT / pic).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", pic
        assert 5_000 < len(data) < 600_000, f"{pic}: {len(data)} bytes; keep it small"
    assert head.index("nox -s demo") < head.index(pictures[0])
    found = stories()
    assert len(found) == 4, list(found)
    titles = " | ".join(found).lower()
    for word in ("generate", "download", "plugin", "metrics only"):
        assert word in titles, word
    for title, blocks in found.items():
        assert any(lang in ("bash", "python") for lang, _ in blocks), title


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _story_env(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A venv whose interpreter also sees the test environment's packages."""
    venv = tmp_path / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = sysconfig.get_paths()["purelib"]
    inner = next((venv / "lib").glob("python*/site-packages"))
    (inner / "_outer_environment.pth").write_text(f"import site; site.addsitedir({purelib!r})\n")
    env = {
        **os.environ,
        "PATH": f"{venv / 'bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}"
        + os.environ.get("PATH", ""),
        "VIRTUAL_ENV": str(venv),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_BUILD_ISOLATION": "0",  # build with the environment's hatchling: no download
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PYTHONPATH", None)
    # the rnnzoo commands run with this environment's Python, so they see its plugins
    from importlib.metadata import entry_points

    for ep in entry_points(group="console_scripts"):
        if ep.name.startswith("rnnzoo"):
            script = venv / "bin" / ep.name
            script.write_text(
                f"#!{venv / 'bin' / 'python'}\nimport sys\nfrom {ep.module} import {ep.attr}\n"
                f"sys.exit({ep.attr}())\n"
            )
            script.chmod(0o755)
    return venv / "bin" / "python", env


def repo_requirement(arg: str) -> tuple[str, list[str]] | None:
    """``(package, extras)`` if ``arg`` names a package of this repository, else ``None``.

    Raises AssertionError for an extra that the package does not declare.
    """
    import tomllib

    m = REQUIREMENT.match(arg)
    if m is None or m["name"] not in REPO_PACKAGES:
        return None
    extras = [e.strip() for e in (m["extras"] or "").split(",") if e.strip()]
    meta = tomllib.loads((ROOT / REPO_PACKAGES[m["name"]] / "pyproject.toml").read_text())
    declared = meta["project"].get("optional-dependencies", {})
    unknown = [e for e in extras if e not in declared]
    assert not unknown, f"{arg}: {m['name']} declares no extra {unknown} (it has {list(declared)})"
    return m["name"], extras


def test_pip_install_lines_name_this_repository_and_its_extras():
    assert repo_requirement("rnnzoo-train") == ("rnnzoo-train", [])
    assert repo_requirement('"rnnzoo-train[torch]"') == ("rnnzoo-train", ["torch"])
    assert repo_requirement("'rnnzoo-metrics[plot,zoo]'") == ("rnnzoo-metrics", ["plot", "zoo"])
    assert repo_requirement("./my-metric") is None
    assert repo_requirement("numpy") is None
    with pytest.raises(AssertionError, match="declares no extra"):
        repo_requirement('"rnnzoo-train[cuda]"')
    text = (ROOT / "README.md").read_text()
    found = [repo_requirement(a) for a in re.findall(r"pip install (\S+)", text)]
    assert ("rnnzoo-train", ["torch"]) in found
    assert ("rnnzoo-train", []) in found


def _bash(body: str, python: Path) -> str:
    lines = []
    for line in body.splitlines():
        m = re.match(r"\s*pip install (\S+)(.*)$", line)
        if m and repo_requirement(m.group(1)) is not None:
            lines.append(f"# (installed already) {line.strip()}")
            continue
        if m:
            line = f"{python} -m pip install -q {m.group(1)}{m.group(2)}"
        lines.append(line)
    return "\n".join(lines)


def _run_story(title: str, tmp_path: Path, check_no_torch: bool = False) -> list[str]:
    python, env = _story_env(tmp_path)
    port = str(_free_port())
    outputs = []
    for lang, body in stories()[title]:
        body = body.replace("8765", port)
        first = body.splitlines()[0] if body else ""
        if first.startswith("# file: "):
            path = tmp_path / first.removeprefix("# file: ").strip()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body)
            continue
        if lang == "bash":
            cmd = ["bash", "-e", "-c", _bash(body, python)]
        elif lang == "python":
            code = body
            if check_no_torch or first.startswith("# no torch"):
                code += "\nimport sys\nassert 'torch' not in sys.modules, 'torch was imported'\n"
            cmd = [str(python), "-c", code]
        else:
            continue
        r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, f"{title}: {lang} block failed\n{body}\n{r.stdout}\n{r.stderr}"
        outputs.append(r.stdout)
    return outputs


def _title(word: str) -> str:
    return next(t for t in stories() if word in t.lower())


@pytest.mark.slow
@pytest.mark.network
def test_story_generate_or_download_a_zoo(tmp_path):
    out = _run_story(_title("generate"), tmp_path)
    assert (tmp_path / "my-zoo.zarr" / "zarr.json").is_file()
    assert (tmp_path / "site" / "registry.txt").is_file()
    assert list((tmp_path / "zoo-cache").rglob("*.zip"))
    assert "OK: " in out[1]  # verify of the downloaded zip
    assert "gru-tanh" in out[2]  # the selection printed by the torch-free Python example
    assert "'W_h'" in out[2]
    assert "torch.Size([" in out[3]


@pytest.mark.slow
def test_story_write_a_metric_plugin(tmp_path):
    out = _run_story(_title("plugin"), tmp_path)
    assert "mean-activity" in out[0]  # `rnnzoo-metrics list` shows it
    assert "my-metric 0.1.0" in out[1]  # the provider recorded on the matrix
    # the plugin exists in the story's environment only, not in the shared one
    import rnnzoo_metrics as rm

    assert "mean-activity" not in {m.name for m in rm.available_metrics()}


def test_story_metrics_only(tmp_path):
    out = _run_story(_title("metrics only"), tmp_path, check_no_torch=True)
    assert "net0" in out[-1]
    assert "(6, 2)" in out[-1]


@pytest.mark.slow
def test_story_your_own_network_in_the_zoo(tmp_path):
    """Story 4 (issue 11 §2): train a small GRU, place it in a tiny zoo, CLI and Python."""
    out = _run_story(_title("your own network"), tmp_path)
    png = (tmp_path / "placed" / "placement.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("nearest.md", "nearest.csv", "distances.csv", "distances.nc"):
        assert (tmp_path / "placed" / name).is_file(), name
    assert not list((tmp_path / "zoo.zarr").rglob("*placement*"))  # nothing into the zoo
    cli, python = out[2], out[3]
    table = [line for line in cli.splitlines() if line.startswith("|")]
    assert any(line.startswith("| SVCCA | 1 |") for line in table)
    assert table == [line for line in python.splitlines() if line.startswith("|")]
