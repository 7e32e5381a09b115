"""The npgan command line, model files and plotting helpers."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from npgan import cli
from npgan.data import write_idx
from npgan.errors import CheckpointError
from npgan.gan import GAN, GANConfig
from npgan.plotting import image_grid, moving_average
from npgan.runner import (
    TrainingRun,
    fixed_noise,
    load_model,
    save_model,
    write_history_csv,
)
from npgan.train import HISTORY_KEYS

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"z_dim": 3, "data_dim": 16, "g_hidden": (5,), "d_hidden": (6,)}


@pytest.fixture(autouse=True)
def _run_in_tmp(tmp_path, monkeypatch):
    """Default output directories (runs/...) land in the test's own folder."""
    monkeypatch.chdir(tmp_path)


def write_split(directory, n=24, seed=0):
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    write_idx(
        directory / "t10k-images-idx3-ubyte",
        rng.integers(0, 256, (n, 28, 28), np.uint8),
    )
    write_idx(directory / "t10k-labels-idx1-ubyte", rng.integers(0, 10, n, np.uint8))
    return directory


def one_line_error(capsys):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# ---------------------------------------------------------------------------
# Bad input: one line on stderr, exit status 2
# ---------------------------------------------------------------------------


def test_cli_missing_data_dir_is_one_line_exit_2(tmp_path, capsys):
    status = cli.main(["train", "--data", str(tmp_path / "nowhere"), "--steps", "1"])
    assert status == 2
    line = one_line_error(capsys)
    assert line.startswith("npgan: error: ") and "nowhere" in line


def test_cli_batch_larger_than_data_is_one_line_exit_2(tmp_path, capsys):
    data = write_split(tmp_path / "d", n=10)
    argv = ["train", "--data", str(data), "--split", "test", "--no-verify"]
    status = cli.main([*argv, "--batch-size", "11", "--out", str(tmp_path / "o")])
    assert status == 2
    assert "--batch-size 11" in one_line_error(capsys)


def test_cli_checksum_mismatch_is_one_line_exit_2(tmp_path, capsys):
    data = write_split(tmp_path / "d")
    status = cli.main(["train", "--data", str(data), "--split", "test", "--steps", "1"])
    assert status == 2
    assert "SHA-256" in one_line_error(capsys)


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--loss", "wasserstein"],
        ["train", "--steps", "-1"],
        ["train", "--batch-size", "0"],
        ["train", "--lr", "nan"],
        ["train", "--steps", "5", "--epochs", "1"],
        ["train", "--dataset", "cifar"],
        ["sample", "model.npz"],  # -o is required
        ["fly"],
    ],
)
def test_cli_bad_flags_exit_2_without_traceback(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("npgan")
    assert "error:" in err.strip().splitlines()[-1]


def test_cli_sample_missing_checkpoint_is_one_line_exit_2(tmp_path, capsys):
    missing = tmp_path / "missing.npz"
    status = cli.main(["sample", str(missing), "-o", str(tmp_path / "x.png")])
    assert status == 2
    assert str(missing) in one_line_error(capsys)


def test_cli_sample_unknown_extension_is_one_line_exit_2(tmp_path, capsys):
    status = cli.main(["sample", "model.npz", "-o", str(tmp_path / "x.jpg")])
    assert status == 2
    assert ".jpg" in one_line_error(capsys)


def test_cli_sample_rejects_an_npz_that_is_not_a_model(tmp_path, capsys):
    other = tmp_path / "other.npz"
    np.savez(other, samples=np.zeros(3))
    status = cli.main(["sample", str(other), "-o", str(tmp_path / "x.png")])
    assert status == 2
    assert "not an npgan model file" in one_line_error(capsys)


def test_cli_console_entry_exits_2_in_a_subprocess(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    missing = tmp_path / "none.npz"
    proc = subprocess.run(
        [sys.executable, "-m", "npgan.cli", "sample", str(missing), "-o", "a.png"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"npgan: error: {missing}: no such model file"
    ]


# ---------------------------------------------------------------------------
# Flags -> configuration and length
# ---------------------------------------------------------------------------


def parse_train(*argv):
    return cli.build_parser().parse_args(["train", *argv])


def test_cli_config_defaults_are_train_defaults():
    config = cli.config_from_args(parse_train())
    d = cli.TRAIN_DEFAULTS
    assert (config.batch_size, config.lr_g, config.lr_d) == (
        d["batch_size"],
        d["lr_g"],
        d["lr_d"],
    )
    # The architecture is GANConfig's.
    base = GANConfig()
    assert (config.g_hidden, config.d_hidden, config.slope, config.z_dim) == (
        base.g_hidden,
        base.d_hidden,
        base.slope,
        base.z_dim,
    )


def test_cli_config_lr_sets_both_and_specific_rates_win():
    config = cli.config_from_args(parse_train("--lr", "1e-3", "--lr-d", "5e-4"))
    assert (config.lr_g, config.lr_d) == (1e-3, 5e-4)
    config = cli.config_from_args(
        parse_train("--loss", "minimax", "--k", "2", "--batch", "32")
    )
    assert (config.loss, config.k, config.batch_size) == ("minimax", 2, 32)


def test_cli_epochs_run_whole_passes_over_the_data(tmp_path, capsys):
    data = write_split(tmp_path / "d", n=20)  # batch 6: 3 batches per epoch
    out = tmp_path / "o"
    argv = ["train", "--data", str(data), "--split", "test", "--no-verify"]
    argv += ["--epochs", "2", "--batch", "6", "--out", str(out), "--no-progress"]
    assert cli.main(argv) == 0
    summary = json.loads((out / "run.json").read_text())
    assert summary["steps"] == 6 and summary["epochs_completed"] == 2
    assert summary["command"] == "npgan " + " ".join(argv)
    assert sorted(p.name for p in (out / "samples").iterdir()) == [
        "epoch_0001.png",
        "epoch_0002.png",
    ]
    assert "done: 6 steps" in capsys.readouterr().out


def test_cli_epochs_count_k_discriminator_batches_per_step(tmp_path):
    data = write_split(tmp_path / "d", n=20)  # batch 5: 4 batches per epoch
    out = tmp_path / "o"
    argv = ["train", "--data", str(data), "--split", "test", "--no-verify"]
    argv += ["--epochs", "2", "--batch", "5", "--k", "3", "--out", str(out)]
    assert cli.main([*argv, "--no-progress"]) == 0
    summary = json.loads((out / "run.json").read_text())
    # 8 real batches at 3 per step: 3 steps (9 batches) complete both epochs.
    assert summary["steps"] == 3 and summary["epochs_completed"] == 2


# ---------------------------------------------------------------------------
# Model files and runs
# ---------------------------------------------------------------------------


def test_model_save_load_round_trip_is_exact(tmp_path):
    config = GANConfig(**SMALL, lr_g=3e-4, loss="minimax", k=2)
    gan = GAN(config, rng=np.random.default_rng(5))
    save_model(tmp_path / "m.npz", gan, step=7)
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.config == config
    for a, b in ((gan.G, loaded.G), (gan.D, loaded.D)):
        assert a.params.keys() == b.params.keys()
        for name in a.params:
            assert a.params[name].tobytes() == b.params[name].tobytes()
    z = gan.noise(4, np.random.default_rng(0))
    np.testing.assert_array_equal(gan.generate(z), loaded.generate(z))
    with np.load(tmp_path / "m.npz", allow_pickle=False) as npz:
        assert int(npz["step"]) == 7


def test_model_load_rejects_parameters_that_do_not_fit(tmp_path):
    gan = GAN(GANConfig(**SMALL), rng=np.random.default_rng(0))
    save_model(tmp_path / "m.npz", gan)
    with np.load(tmp_path / "m.npz", allow_pickle=False) as npz:
        arrays = dict(npz)
    arrays["G/0.W"] = arrays["G/0.W"][:, :-1]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(CheckpointError, match="G does not fit"):
        load_model(tmp_path / "bad.npz")


def test_fixed_noise_depends_on_seed_only():
    config = GANConfig(**SMALL)
    a = fixed_noise(config, 1)
    np.testing.assert_array_equal(a, fixed_noise(config, 1))
    assert a.shape == (100, 3) and a.dtype == np.float32
    assert not np.array_equal(a, fixed_noise(config, 2))


def test_training_run_same_seed_same_networks(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (30, 4, 4), np.uint8)
    config = GANConfig(**SMALL, batch_size=5)
    runs = []
    for name in ("a", "b"):
        run = TrainingRun(config, images, tmp_path / name, seed=9)
        seen = []
        run.train(8, callbacks=[lambda r, row, seen=seen: seen.append(row["step"])])
        assert seen == list(range(1, 9))
        runs.append(run)
    for name, value in runs[0].gan.G.params.items():
        assert value.tobytes() == runs[1].gan.G.params[name].tobytes()
    assert runs[0].trainer.history == runs[1].trainer.history
    # One grid per completed epoch (6 batches each): step 6 ends epoch 1.
    assert [p.name for p in (tmp_path / "a" / "samples").iterdir()] == [
        "epoch_0001.png"
    ]


def test_history_csv_round_trip(tmp_path):
    history = {key: [] for key in HISTORY_KEYS}
    rng = np.random.default_rng(0)
    for step in range(1, 4):
        history["step"].append(step)
        history["epoch"].append(step // 2)
        for key in HISTORY_KEYS[2:]:
            history[key].append(float(rng.standard_normal()))
    write_history_csv(tmp_path / "h.csv", history)
    with open(tmp_path / "h.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3
    for i, row in enumerate(rows):
        assert int(row["step"]) == history["step"][i]
        assert int(row["epoch"]) == history["epoch"][i]
        for key in HISTORY_KEYS[2:]:
            assert float(row[key]) == history[key][i]  # exact: repr round-trips


# ---------------------------------------------------------------------------
# Plotting helpers
# ---------------------------------------------------------------------------


def test_image_grid_places_each_image_in_its_cell():
    images = np.arange(1, 6, dtype=np.uint8)[:, None, None] * np.ones(
        (1, 2, 3), np.uint8
    )  # five 2 x 3 images of constant value 1..5
    grid = image_grid(images, ncol=2, pad=1, background=0)
    assert grid.shape == (3 * 3 + 1, 2 * 4 + 1)
    for i in range(5):
        r, c = divmod(i, 2)
        cell = grid[1 + 3 * r : 3 + 3 * r, 1 + 4 * c : 4 + 4 * c]
        assert np.all(cell == i + 1)
    assert grid[7:9, 5:8].sum() == 0  # the sixth cell stays background
    assert np.count_nonzero(grid) == 5 * 6


def test_image_grid_rejects_non_square_flat_rows():
    with pytest.raises(ValueError, match="square"):
        image_grid(np.zeros((2, 15), np.uint8))


@given(
    st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=40),
    st.integers(1, 10),
)
def test_moving_average_matches_a_direct_mean(values, window):
    got = moving_average(values, window)
    expected = [
        np.mean(values[max(0, t - window + 1) : t + 1]) for t in range(len(values))
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


def test_cli_new_run_refuses_a_folder_with_an_earlier_run(tmp_path, capsys):
    data = write_split(tmp_path / "d", n=16)
    argv = ["train", "--data", str(data), "--split", "test", "--no-verify"]
    argv += ["--batch-size", "8", "--g-hidden", "8", "--d-hidden", "8", "--z-dim", "4"]
    out = tmp_path / "o"
    assert cli.main([*argv, "--steps", "3", "--out", str(out)]) == 0
    saved = sorted((out / "checkpoints").iterdir())
    before = [p.read_bytes() for p in saved]
    capsys.readouterr()
    assert cli.main([*argv, "--steps", "2", "--out", str(out)]) == 2
    line = one_line_error(capsys)
    assert "holds an earlier run" in line and f"--resume {out}" in line
    assert sorted((out / "checkpoints").iterdir()) == saved
    assert [p.read_bytes() for p in saved] == before
    # --overwrite starts over: only the new run's checkpoints remain.
    assert cli.main([*argv, "--steps", "2", "--out", str(out), "--overwrite"]) == 0
    names = [p.name for p in (out / "checkpoints").iterdir()]
    assert names == ["checkpoint-00000002.npz"]


def test_cli_unwritable_sample_output_is_one_line_exit_2(tmp_path, capsys):
    gan = GAN(
        GANConfig(z_dim=4, g_hidden=(8,), d_hidden=(8,)), rng=np.random.default_rng(0)
    )
    save_model(tmp_path / "model.npz", gan, step=0)
    (tmp_path / "afile").write_text("x")
    argv = ["sample", str(tmp_path / "model.npz"), "-n", "4"]
    assert cli.main([*argv, "-o", str(tmp_path / "afile" / "s.png")]) == 2
    assert one_line_error(capsys).startswith("npgan: error: ")
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes((tmp_path / "model.npz").read_bytes()[:500])
    assert cli.main(["sample", str(damaged), "-n", "4", "-o", "x.png"]) == 2
    assert one_line_error(capsys).startswith("npgan: error: ")


def test_cli_garbage_model_file_is_named_not_an_npz(tmp_path, capsys):
    garbage = tmp_path / "model.npz"
    garbage.write_text("hello")
    assert cli.main(["sample", str(garbage), "-n", "4", "-o", "x.png"]) == 2
    line = one_line_error(capsys)
    assert "not a model file (not an .npz archive)" in line and "pickle" not in line


def test_cli_resume_refuses_a_total_below_the_checkpoint_step(tmp_path, capsys):
    data = write_split(tmp_path / "d", n=16)
    argv = ["train", "--data", str(data), "--split", "test", "--no-verify"]
    argv += ["--batch-size", "8", "--g-hidden", "8", "--d-hidden", "8", "--z-dim", "4"]
    out = tmp_path / "o"
    assert cli.main([*argv, "--steps", "3", "--out", str(out)]) == 0
    model = (out / "model.npz").read_bytes()
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(out), "--steps", "2"]) == 2
    assert "at step 3, past the requested total of 2 steps" in one_line_error(capsys)
    assert (out / "model.npz").read_bytes() == model
