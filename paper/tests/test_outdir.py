"""The ``--out`` folder rules of ``rnnzoo-paper`` (rnnzoo_paper.outdir)."""

from __future__ import annotations

import pytest

from rnnzoo_paper.outdir import MARKER, OutputError, check_out, make_out


def test_a_new_or_empty_folder_is_accepted_and_marked(tmp_path):
    check_out(tmp_path / "new" / "deeper", "demo")
    assert not (tmp_path / "new").exists()  # checking creates nothing
    make_out(tmp_path / "new" / "deeper", "demo")
    assert (tmp_path / "new" / "deeper" / MARKER).is_file()
    check_out(tmp_path / "new" / "deeper", "demo")  # a rerun resumes in it
    (tmp_path / "empty").mkdir()
    check_out(tmp_path / "empty", "synthetic")


def test_an_earlier_unmarked_output_is_recognised(tmp_path):
    (tmp_path / "zoo.zarr").mkdir()
    (tmp_path / "fig1.png").write_bytes(b"")
    check_out(tmp_path, "demo")
    with pytest.raises(OutputError, match="other files"):
        check_out(tmp_path, "synthetic")


def test_user_files_and_another_commands_output_are_refused(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    with pytest.raises(OutputError, match="other files"):
        check_out(tmp_path / "mine", "demo")
    make_out(tmp_path / "synth", "synthetic")
    with pytest.raises(OutputError, match="rnnzoo-paper synthetic"):
        check_out(tmp_path / "synth", "demo")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        check_out(tmp_path / "file", "demo")
    with pytest.raises(OutputError, match="is a file"):
        check_out(tmp_path / "file" / "sub", "demo")
