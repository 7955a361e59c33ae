"""A zoo trained through a trial-length schedule (a curriculum over T) says so in the report."""

from __future__ import annotations

from dataclasses import replace

from rnnzoo_paper import caveats


def test_size_facts_name_the_trial_length_schedule(tmp_path):
    from rnnzoo_train.generate import generate
    from rnnzoo_train.presets import TINY
    from rnnzoo_train.zoo import ZarrZooWriter, open_zoo

    preset = replace(
        TINY,
        name="tiny-curriculum",
        archs=("gru",),
        seeds=(0,),
        tasks=("sine",),
        n_trials=0,
        search_iterations=0,
        task_params={},
        task_curricula={"sine": ((10, 12), (30, 8))},
    )
    with ZarrZooWriter(tmp_path / "zoo.zarr") as writer:
        generate(preset, ["sine"], writer, progress=False)
    zoo = open_zoo(tmp_path / "zoo.zarr")
    try:
        text = caveats.size_facts(zoo, "sine")
    finally:
        zoo.close()
    assert "20 SGD iterations, T = 30 steps, reached through a trial-length schedule" in text
    assert "(T = 10 x 12 -> T = 30 x 8 iterations)" in text
