"""``rnnzoo-train generate``: the real console script, its errors and its output."""

import argparse
import subprocess
import sys

import pytest

from rnnzoo_train import cli


def run(*args, cwd=None):
    return subprocess.run(
        ["rnnzoo-train", *args], capture_output=True, text=True, cwd=cwd, timeout=600,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip


def _one_line_error(proc, message):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("rnnzoo-train: error: ")
    assert message in lines[0]
    assert "Traceback" not in proc.stderr


def test_generate_tiny_with_progress_and_summary(tmp_path):
    out = tmp_path / "zoo.zarr"
    proc = run("generate", "--preset", "tiny", "--task", "cdi,flipflop", "--out", str(out),
               "--workers", "2")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "net/s" in proc.stderr or "net]" in proc.stderr  # tqdm: done/total, rate, ETA
    assert "16/16" in proc.stderr  # 2 tasks x 2 configurations x (2 trials + 2 seeds)
    assert "loss=" in proc.stderr
    assert "median test loss" in proc.stdout
    assert "solved" in proc.stdout
    assert "cdi" in proc.stdout
    assert "flipflop" in proc.stdout
    from rnnzoo_train.zoo import open_zoo

    zoo = open_zoo(out)
    assert set(zoo.tasks) == {"cdi", "flipflop"}
    # the same command again resumes: nothing left to train
    again = run("generate", "--preset", "tiny", "--task", "cdi", "--out", str(out), "--no-progress")
    assert again.returncode == 0, again.stderr
    assert "already complete and were skipped" in again.stdout


def test_unknown_preset(tmp_path):
    _one_line_error(
        run("generate", "--preset", "huge", "--out", str(tmp_path / "z")), "unknown preset 'huge'"
    )
    assert not (tmp_path / "z").exists()


def test_unknown_task(tmp_path):
    _one_line_error(
        run(
            "generate",
            "--preset",
            "tiny",
            "--task",
            "flipflop,juggling",
            "--out",
            str(tmp_path / "z"),
        ),
        "unknown task 'juggling'; choose from",
    )


def test_bad_config_file(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text("[grid]\nunits = [0]\n")
    _one_line_error(
        run("generate", "--config", str(grid), "--out", str(tmp_path / "z")),
        "units must be positive integers, got 0",
    )
    _one_line_error(
        run("generate", "--config", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "z")),
        "does not exist",
    )


def test_unwritable_output(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    _one_line_error(
        run("generate", "--preset", "tiny", "--out", str(blocker / "zoo.zarr")),
        "is not a directory",
    )
    _one_line_error(
        run("generate", "--preset", "tiny", "--out", str(blocker)), "is not a directory"
    )


def test_presets_command():
    proc = run("presets")
    assert proc.returncode == 0
    for name in ("tiny:", "demo:", "paper:", "departs from the paper"):
        assert name in proc.stdout


def test_other_modules_can_register_subcommands(capsys):
    seen = {}

    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("word")

    def go(args) -> int:
        seen["word"] = args.word
        if args.word == "bad":
            raise cli.CLIError("bad word; try another")
        return 0

    cli.register("echo-test", "test command", add, go)
    try:
        assert cli.main(["echo-test", "hello"]) == 0
        assert seen["word"] == "hello"
        assert cli.main(["echo-test", "bad"]) == 2
        assert capsys.readouterr().err.strip() == "rnnzoo-train: error: bad word; try another"
    finally:
        cli._REGISTRY.pop("echo-test")


def test_missing_out_is_a_usage_error(capsys):
    # --out is optional for --dry-run, so a real run without it is refused by generate
    # itself: one line, status 2 (as argparse's usage error was)
    assert cli.main(["generate", "--preset", "tiny"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "rnnzoo-train: error: --out is required: the zoo store to create or resume "
        "(or use --dry-run)"
    )
    assert sys.executable  # the console script and main() share the parser


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_a_missing_gpu_is_a_one_line_error_and_writes_nothing(tmp_path):
    out = tmp_path / "z"
    proc = run("generate", "--preset", "tiny", "--device", "cuda", "--out", str(out))
    _one_line_error(proc, "sees no CUDA GPU; use --device cpu")
    assert not out.exists()
    _one_line_error(
        run("generate", "--preset", "tiny", "--device", "gpu0", "--out", str(out)),
        "unknown device 'gpu0'",
    )
