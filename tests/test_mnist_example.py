"""Smoke run of examples/mnist.py on a tiny IDX data set, then `npgan sample`.

The example runs the real code path (data loading, the default networks,
training, every output file) for a few steps on 48 random 28 x 28 images, so
the whole module takes a few seconds.
"""

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from npgan import cli
from npgan.data import write_idx
from npgan.gan import GANConfig
from npgan.runner import load_model
from npgan.train import HISTORY_KEYS

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mnist.py"
IMAGES, BATCH, STEPS = 48, 8, 14  # 6 batches per epoch: epochs end at steps 6, 12


def write_split(directory, n=IMAGES, seed=0):
    """A test split of ``n`` random digits under MNIST's file names."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    write_idx(directory / "t10k-images-idx3-ubyte", images, compress=True)
    write_idx(directory / "t10k-labels-idx1-ubyte", rng.integers(0, 10, n, np.uint8))
    return directory


def load_example():
    spec = importlib.util.spec_from_file_location("mnist_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Output directory of one smoke run of the example (run once per module)."""
    root = tmp_path_factory.mktemp("mnist_example")
    data = write_split(root / "data")
    out = root / "out"
    argv = [
        "--data", str(data), "--split", "test", "--no-verify", "--no-download",
        "--steps", str(STEPS), "--batch-size", str(BATCH), "--lr", "1e-3",
        "--seed", "3", "--out", str(out), "--no-progress",
    ]  # fmt: skip
    status = load_example().main(argv)
    assert status == 0
    return out


def assert_png(path, height=None, width=None):
    image = imread(path)  # (H, W, C) floats in [0, 1]
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    if height is not None:
        assert image.shape[:2] == (height, width)
    return image


def grid_side(n_per_row, scale=2, pad=2, side=28):
    return scale * (n_per_row * (side + pad) + pad)


def test_mnist_example_writes_every_output_file(run_dir):
    names = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*"))
    assert names == [
        "checkpoints",
        f"checkpoints/checkpoint-{STEPS:08d}.npz",
        "curves.png",
        "history.csv",
        "model.npz",
        "run.json",
        "samples",
        "samples/epoch_0001.png",
        "samples/epoch_0002.png",
        "samples_final.png",
    ]


def test_mnist_example_sample_grids_are_10x10_pngs(run_dir):
    side = grid_side(10)
    for path in [run_dir / "samples_final.png", *run_dir.glob("samples/*.png")]:
        image = assert_png(path, side, side)
        assert image[..., :3].std() > 0  # not a blank picture


def test_mnist_example_curves_png_is_readable(run_dir):
    assert_png(run_dir / "curves.png", 600, 800)


def test_mnist_example_history_csv_has_one_row_per_step(run_dir):
    with open(run_dir / "history.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == HISTORY_KEYS
    body = rows[1:]
    assert [int(r[0]) for r in body] == list(range(1, STEPS + 1))
    epochs = [int(r[1]) for r in body]
    assert epochs == [0] * 5 + [1] * 6 + [2] * 3  # an epoch ends every 6 steps
    values = np.array([[float(v) for v in r[2:]] for r in body])
    assert np.all(np.isfinite(values))
    d_real, d_fake = values[:, 2], values[:, 3]
    assert np.all((d_real > 0) & (d_real < 1) & (d_fake > 0) & (d_fake < 1))


def test_mnist_example_model_loads_without_pickle(run_dir):
    with np.load(run_dir / "model.npz", allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    config = GANConfig.from_dict(json.loads(str(arrays["config"][0])))
    ema = cli.TRAIN_DEFAULTS["ema"]
    assert config == GANConfig(batch_size=BATCH, lr_g=1e-3, lr_d=1e-3, ema=ema)
    assert int(arrays["step"]) == STEPS
    gan = load_model(run_dir / "model.npz")
    nets = [("G", gan.G), ("D", gan.D)] + ([("G_ema", gan.G_ema)] if ema else [])
    for prefix, net in nets:
        for name, value in net.params.items():
            assert value.dtype == np.float32
            np.testing.assert_array_equal(value, arrays[f"{prefix}/{name}"])
    summary = json.loads((run_dir / "run.json").read_text())
    assert summary["steps"] == STEPS and summary["data_images"] == IMAGES
    assert summary["seed"] == 3 and summary["config"] == config.to_dict()


def test_npgan_sample_writes_png_grid(run_dir, tmp_path):
    out = tmp_path / "grid.png"
    argv = ["sample", str(run_dir / "model.npz"), "-n", "12", "-o", str(out)]
    assert cli.main(argv) == 0
    assert_png(out, grid_side(3), grid_side(4))  # 4 per row, 3 rows


def test_npgan_sample_writes_raw_npz(run_dir, tmp_path):
    out = tmp_path / "raw.npz"
    model = str(run_dir / "model.npz")
    assert cli.main(["sample", model, "-n", "5", "-o", str(out), "--seed", "4"]) == 0
    with np.load(out, allow_pickle=False) as npz:
        samples, images = npz["samples"], npz["images"]
    assert samples.shape == (5, 784) and samples.dtype == np.float32
    assert np.all(np.abs(samples) <= 1)
    assert images.shape == (5, 28, 28) and images.dtype == np.uint8
    # The same noise seed through the loaded generator gives the same samples.
    gan = load_model(model)
    expected = gan.generate(gan.noise(5, np.random.default_rng(4)))
    np.testing.assert_array_equal(samples, expected)


def test_mnist_example_named_eval_data_that_is_missing_is_an_error(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--eval-data", str(tmp_path / "nope"), "--steps", "1", "--out", str(out)]
    assert load_example().main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope: no mnist test split there" in err[0]
    assert not out.exists()
