"""The command line around checkpoints: exact resume across processes, Ctrl-C,
guards, and bad input (one stderr line, exit status 2, no traceback).

Every run here is a real ``python -m npgan.cli train`` process on a tiny IDX
data set and a tiny network; independent processes run concurrently to keep
the module within a few seconds of wall time per stage.
"""

import gzip
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from npgan import checkpoint, cli
from npgan.data import fingerprint, load_dataset, write_idx
from npgan.gan import GAN, GANConfig
from npgan.train import Trainer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "mnist.py"
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    "OPENBLAS_NUM_THREADS": "1",
    "PYTHONUNBUFFERED": "1",
}
TINY = ["--z-dim", "4", "--g-hidden", "8", "--d-hidden", "8", "--batch-size", "8"]
QUIET = ["--no-progress", "--no-download", "--no-verify", "--split", "test"]


def write_split(directory, n=40, seed=0, n_labels=None):
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n if n_labels is None else n_labels, np.uint8)
    write_idx(directory / "t10k-images-idx3-ubyte", images, compress=True)
    write_idx(directory / "t10k-labels-idx1-ubyte", labels)
    return directory


def start(*argv, cwd):
    return subprocess.Popen(
        [sys.executable, "-m", "npgan.cli", "train", *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        cwd=cwd,
    )


def finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def assert_same_checkpoint(a, b):
    """Two checkpoint files hold bitwise the same run state."""
    ca, cb = checkpoint.load(a), checkpoint.load(b)
    assert ca.arrays.keys() == cb.arrays.keys()
    for name, value in ca.arrays.items():
        other = cb.arrays[name]
        assert value.dtype == other.dtype, name
        assert value.tobytes() == other.tobytes(), name
    for key in ("step", "epoch", "position", "opt_g_t", "opt_d_t", "rng", "config"):
        assert ca.meta[key] == cb.meta[key], key
    assert ca.meta["data_fingerprint"] == cb.meta["data_fingerprint"]


# ---------------------------------------------------------------------------
# Exact resume across a process boundary
# ---------------------------------------------------------------------------


def train_here(*argv):
    """``npgan train`` in this process (same code path, no interpreter start)."""
    assert cli.main(["train", *map(str, argv)]) == 0


def test_cli_resume_in_new_process_is_bitwise_equal_to_straight_run(tmp_path):
    data = write_split(tmp_path / "data")
    n = 7  # 5 batches per epoch: the stop falls inside epoch 2
    common = [*QUIET, "--data", data, *TINY, "--seed", "3", "--checkpoint-every", "0"]
    resumed = {}
    # The third run keeps a moving average of G, which must resume exactly too.
    variants = {
        "float32": ["--ema", "0"],
        "float64": ["--ema", "0"],
        "float32-ema": ["--ema", "0.95"],
    }
    for dtype, more in variants.items():
        flags = [*common, "--dtype", dtype.split("-")[0], *more]
        train_here(*flags, "--steps", 2 * n, "--out", tmp_path / f"straight-{dtype}")
        train_here(*flags, "--steps", n, "--out", tmp_path / f"split-{dtype}")
        # The second half: a new process, told only where the run is and how
        # far to go.
        resumed[dtype] = start(
            "--resume", tmp_path / f"split-{dtype}", "--steps", 2 * n, "--no-progress",
            cwd=tmp_path,
        )  # fmt: skip
    for dtype, proc in resumed.items():
        status, out, err = finish(proc)
        assert status == 0, err
        assert f"at step {n} (epoch 1)" in out
        straight, split = tmp_path / f"straight-{dtype}", tmp_path / f"split-{dtype}"
        name = f"checkpoints/checkpoint-{2 * n:08d}.npz"
        assert_same_checkpoint(straight / name, split / name)
        arrays = checkpoint.load(split / name).arrays
        assert arrays["G/0.W"].dtype == np.dtype(dtype.split("-")[0])
        assert ("G_ema/0.W" in arrays) == dtype.endswith("-ema")
        history = (straight / "history.csv").read_bytes()
        assert history == (split / "history.csv").read_bytes()
        assert len(history.splitlines()) == 2 * n + 1
        # The first half's final checkpoint is still there (keep=3).
        assert checkpoint.load(split / f"checkpoints/checkpoint-{n:08d}.npz").step == n


def test_cli_ctrl_c_saves_says_how_to_resume_and_resume_matches(tmp_path):
    data = write_split(tmp_path / "data", n=400)  # 50 batches per epoch
    flags = [*QUIET, "--data", data, *TINY, "--seed", "5", "--checkpoint-every", "0"]
    out = tmp_path / "run"
    proc = start(*flags, "--steps", 10**6, "--out", out, cwd=tmp_path)
    assert proc.stdout.readline().startswith("data: ")
    assert proc.stdout.readline().startswith("training ")
    time.sleep(0.3)  # inside the training loop now
    proc.send_signal(signal.SIGINT)
    status, rest, err = finish(proc)
    assert status == 130, err
    assert err == ""
    lines = rest.splitlines()
    step = int(lines[-2].split()[3].rstrip(";"))
    saved = out / "checkpoints" / f"checkpoint-{step:08d}.npz"
    assert lines[-2] == f"interrupted at step {step}; saved {saved}"
    assert lines[-1] == f"resume with: npgan train --resume {out}"
    assert step >= 1 and checkpoint.load(saved).step == step
    # Resume for three more steps in a new process, and compare with a run
    # that never stopped.
    again = start("--resume", out, "--steps", step + 3, "--no-progress", cwd=tmp_path)
    train_here(*flags, "--steps", step + 3, "--out", tmp_path / "straight")
    assert finish(again)[0] == 0
    name = f"checkpoints/checkpoint-{step + 3:08d}.npz"
    assert_same_checkpoint(tmp_path / "straight" / name, out / name)


def test_cli_non_finite_value_stops_and_keeps_last_good_checkpoint(
    tmp_path, capsys, monkeypatch
):
    data = write_split(tmp_path / "data")
    out = tmp_path / "run"
    real_step = Trainer.train_step

    def poisoned_step(self):
        if self.step == 4:  # the 5th step overflows a parameter
            self.gan.G.params["2.W"][0, 0] = np.inf
        return real_step(self)

    monkeypatch.setattr(Trainer, "train_step", poisoned_step)
    argv = ["train", *QUIET, "--data", str(data), *TINY, "--out", str(out)]
    status = cli.main([*argv, "--steps", "20", "--checkpoint-every", "2"])
    assert status == 1
    err = capsys.readouterr().err.strip().splitlines()
    last = out / "checkpoints" / "checkpoint-00000004.npz"
    assert err == [
        "npgan: error: step 5: the generator's gradient is not finite; "
        f"last good checkpoint: {last}"
    ]
    assert checkpoint.latest(out / "checkpoints") == last
    good = checkpoint.load(last)
    assert good.step == 4 and np.isfinite(good.arrays["G/2.W"]).all()


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


def _corrupt(path, change):
    path.write_bytes(change(path.read_bytes()))


def _bad_split(root, name, change_images=None, **split):
    directory = write_split(root / name, n=16, **split)
    if change_images is not None:
        _corrupt(directory / "t10k-images-idx3-ubyte", change_images)
    return directory


def _ungzip(blob):
    return gzip.decompress(blob)


BAD_INPUT = {
    # case: (argv maker(tmp_path), text the one stderr line must contain)
    "missing data dir": (
        lambda t: ["--data", t / "nowhere"],
        "nowhere: no mnist test split there",
    ),
    "data dir is a file": (
        lambda t: ["--data", t / "afile"],
        "afile: is a file; expected a directory",
    ),
    "wrong magic": (
        lambda t: [
            "--data",
            _bad_split(t, "magic", lambda b: b"\x01" + _ungzip(b)[1:]),
        ],
        "IDX magic number must start with 00 00, found 01 00 08 03",
    ),
    "truncated payload": (
        lambda t: ["--data", _bad_split(t, "short", lambda b: _ungzip(b)[:-5])],
        "12544 payload bytes, found 12539 (truncated)",
    ),
    "overlong payload": (
        lambda t: ["--data", _bad_split(t, "long", lambda b: _ungzip(b) + b"\0\0")],
        "12544 payload bytes, found 12546 (trailing bytes)",
    ),
    "count mismatch": (
        lambda t: ["--data", _bad_split(t, "count", n_labels=15)],
        "holds 16 images but",
    ),
    "corrupt gzip": (
        lambda t: ["--data", _bad_split(t, "gzip", lambda b: b[:40])],
        "starts with the gzip magic bytes 1f 8b but is not a valid gzip stream",
    ),
    "output not writable": (
        lambda t: ["--data", t / "good", "--out", t / "afile" / "out"],
        f"output directory {{t}}{os.sep}afile{os.sep}out: cannot write there",
    ),
    "batch 0": (lambda t: ["--batch-size", "0"], "expected an integer >= 1, got 0"),
    "lr 0": (lambda t: ["--lr", "0"], "expected a positive number, got 0"),
    "lr_d negative": (lambda t: ["--lr-d", "-0.001"], "positive number, got -0.001"),
    "k 0": (lambda t: ["--k", "0"], "argument --k: expected an integer >= 1, got 0"),
    "beta1 1": (lambda t: ["--beta1", "1"], "--beta1: expected a number in [0, 1)"),
    "beta2 negative": (lambda t: ["--beta2", "-0.1"], "in [0, 1), got -0.1"),
    "other architecture": (
        lambda t: ["--resume", t / "ckpt", "--g-hidden", "16", "--data", t / "good"],
        "differs from the flags: g_hidden [8] (checkpoint) vs [16] (flags)",
    ),
    "other data": (
        lambda t: ["--resume", t / "ckpt", "--data", t / "other"],
        "this data set has",
    ),
    "damaged checkpoint": (
        lambda t: ["--resume", t / "broken.npz"],
        "broken.npz: not a readable checkpoint",
    ),
    "no checkpoint": (
        lambda t: ["--resume", t / "good"],
        "good: no checkpoint there",
    ),
}


@pytest.fixture(scope="module")
def bad_input_results(tmp_path_factory):
    """Run every bad-input case as its own process, all at once."""
    t = tmp_path_factory.mktemp("bad")
    (t / "afile").write_text("not a directory")
    good = write_split(t / "good", n=16)
    write_split(t / "other", n=16, seed=1)
    # A checkpoint of a tiny run on `good`, as `npgan train` leaves it.
    dataset = load_dataset("mnist", "test", data_dir=good, verify=False)
    config = GANConfig(z_dim=4, g_hidden=(8,), d_hidden=(8,), batch_size=8)
    gan = GAN(config, rng=np.random.default_rng(0))
    trainer = Trainer(gan, dataset.images, rng=np.random.default_rng(0))
    trainer.run(1)
    settings = {"seed": 0, "steps": 2, "dataset": "mnist", "split": "test"}
    settings.update(data=str(good), cache_dir=None, download=False, verify=False)
    saved = checkpoint.save(
        t / "ckpt" / "checkpoints",
        trainer,
        fingerprint=fingerprint(dataset),
        extra=settings,
    )
    (t / "broken.npz").write_bytes(saved.read_bytes()[:500])
    procs = {
        case: start(*QUIET, "--data", good, "--steps", "2", *make(t), cwd=t)
        for case, (make, _) in BAD_INPUT.items()
    }
    return t, {case: finish(proc) for case, proc in procs.items()}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_cli_bad_input_one_stderr_line_exit_2(bad_input_results, case):
    t, results = bad_input_results
    status, _, err = results[case]
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("npgan") and ": error: " in lines[0]
    assert BAD_INPUT[case][1].format(t=t) in lines[0]
    assert status == 2


def test_mnist_example_resume_flag_continues_the_run(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("mnist_example", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    data = write_split(tmp_path / "data")
    out = tmp_path / "run"
    argv = [*QUIET, "--data", str(data), *TINY, "--out", str(out)]
    assert example.main([*argv, "--steps", "3"]) == 0
    assert example.main(["--resume", str(out), "--steps", "5", "--no-progress"]) == 0
    assert "resumed from" in capsys.readouterr().out
    final = checkpoint.load(out / "checkpoints")
    assert final.step == 5 and final.meta["history_keys"][0] == "step"
    assert final.arrays["history/step"].tolist() == [1, 2, 3, 4, 5]
