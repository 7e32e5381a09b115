"""Checkpoints: exact resume, atomic writes under SIGKILL, rotation, validation."""

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import checkpoint_driver
import numpy as np
import pytest

from npgan import __version__, checkpoint
from npgan.errors import CheckpointError, ConfigError, NonFiniteError
from npgan.gan import GAN, GANConfig
from npgan.train import HISTORY_KEYS, Trainer

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"z_dim": 4, "data_dim": 6, "g_hidden": (8,), "d_hidden": (8,), "batch_size": 5}
IMAGES = np.random.default_rng(0).integers(0, 256, (23, 6), dtype=np.uint8)


def make_trainer(init_seed=0, run_seed=1, images=IMAGES, **overrides):
    gan = GAN(GANConfig(**{**SMALL, **overrides}), rng=np.random.default_rng(init_seed))
    return Trainer(gan, images, rng=np.random.default_rng(run_seed))


def assert_same_state(a, b):
    """Two Trainer.state_dict() results are bitwise equal, part by part."""
    assert a["step"] == b["step"]
    assert a["rng"] == b["rng"]
    for key in HISTORY_KEYS:
        left, right = np.array(a["history"][key]), np.array(b["history"][key])
        assert left.dtype == right.dtype and left.tobytes() == right.tobytes(), key
    assert a.keys() == b.keys()
    for part in ("G", "D", "opt_g", "opt_d", "G_ema"):
        if part not in a:
            continue
        assert a[part].keys() == b[part].keys(), part
        for name in a[part]:
            left, right = np.asarray(a[part][name]), np.asarray(b[part][name])
            assert left.dtype == right.dtype, f"{part}/{name}"
            assert left.tobytes() == right.tobytes(), f"{part}/{name}"
    sa, sb = a["sampler"], b["sampler"]
    assert (sa["position"], sa["epoch"]) == (sb["position"], sb["epoch"])
    assert sa["permutation"].tobytes() == sb["permutation"].tobytes()


def rewrite(path, change):
    """Load an npz's entries, let ``change(meta, arrays)`` edit them, save."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(str(arrays.pop("meta")))
    change(meta, arrays)
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)


# ---------------------------------------------------------------------------
# Round trip and exact resume
# ---------------------------------------------------------------------------


def test_checkpoint_round_trip_restores_every_part(tmp_path):
    trainer = make_trainer()
    trainer.run(7)  # 23 images in batches of 5: crosses an epoch boundary
    path = checkpoint.save(tmp_path, trainer, fingerprint="abc", extra={"seed": 3})
    assert path.name == "checkpoint-00000007.npz"
    # Plain npz, no pickles; the metadata is readable JSON.
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(str(archive["meta"]))
        assert archive["G/0.W"].dtype == np.float32
    assert meta["step"] == 7 and meta["epoch"] == trainer.epoch == 1
    assert meta["position"] == trainer.sampler.position
    assert meta["npgan_version"] == __version__
    assert meta["config"] == trainer.gan.config.to_dict()
    assert meta["data_fingerprint"] == "abc" and meta["extra"] == {"seed": 3}
    assert meta["opt_g_t"] == 7 and meta["opt_d_t"] == 7

    fresh = make_trainer(init_seed=5, run_seed=6)
    ck = checkpoint.restore(fresh, tmp_path, fingerprint="abc")
    assert ck.path == path and ck.step == 7 and ck.extra == {"seed": 3}
    assert_same_state(fresh.state_dict(), trainer.state_dict())
    assert fresh.history == trainer.history
    assert all(type(v) is float for v in fresh.history["d_loss"])


@pytest.mark.parametrize(
    ("dtype", "k", "ema"),
    [("float32", 1, 0.0), ("float32", 2, 0.0), ("float64", 1, 0.0),
     ("float64", 2, 0.0), ("float32", 1, 0.9), ("float64", 2, 0.99)],
)  # fmt: skip
def test_checkpoint_resume_is_bitwise_equal_to_straight_run(tmp_path, dtype, k, ema):
    straight = make_trainer(dtype=dtype, k=k, ema=ema)
    straight.run(12)
    assert ("G_ema" in straight.state_dict()) == (ema > 0)

    first = make_trainer(dtype=dtype, k=k, ema=ema)
    first.run(6)
    path = checkpoint.write(tmp_path / "half.npz", first)
    del first
    # A new trainer with other weights and another seed: all must come from
    # the file.
    second = make_trainer(init_seed=11, run_seed=12, dtype=dtype, k=k, ema=ema)
    checkpoint.restore(second, path)
    second.run(6)

    assert_same_state(second.state_dict(), straight.state_dict())
    assert second.history == straight.history
    assert second.gan.G.params["0.W"].dtype == np.dtype(dtype)


# ---------------------------------------------------------------------------
# Rotation and atomic writes
# ---------------------------------------------------------------------------


def test_checkpoint_save_keeps_the_newest_and_clears_temporaries(tmp_path):
    trainer = make_trainer()
    stale = tmp_path / ".checkpoint-00000001.npz.0123abcd.tmp"
    stale.write_bytes(b"half a checkpoint")
    unrelated = tmp_path / "notes.txt"
    unrelated.write_text("keep me")
    for _ in range(5):
        trainer.run(1)
        checkpoint.save(tmp_path, trainer, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint-00000004.npz",
        "checkpoint-00000005.npz",
        "notes.txt",
    ]
    assert checkpoint.latest(tmp_path).name == "checkpoint-00000005.npz"
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == [
        "checkpoint-00000004.npz",
        "checkpoint-00000005.npz",
    ]


def test_checkpoint_save_rejects_bad_keep(tmp_path):
    with pytest.raises(ConfigError, match="keep must be an integer >= 1, got 0"):
        checkpoint.save(tmp_path, make_trainer(), keep=0)


def test_checkpoint_failed_write_leaves_old_file_and_no_temporary(
    tmp_path, monkeypatch
):
    trainer = make_trainer()
    trainer.run(2)
    path = checkpoint.write(tmp_path / "run.npz", trainer)
    before = path.read_bytes()
    trainer.run(1)

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(CheckpointError, match="No space left on device"):
        checkpoint.write(path, trainer)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]


def test_checkpoint_unwritable_directory_is_checkpoint_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(CheckpointError, match="cannot create checkpoint directory"):
        checkpoint.save(blocker / "ckpt", make_trainer())


def test_checkpoint_sigkill_during_writes_leaves_previous_or_new(tmp_path):
    """Kill a checkpointing process 20 times; each time the newest file on
    disk loads, is the last confirmed step or the one after, and equals the
    reference run at its step in every byte."""
    directory, log = tmp_path / "ckpt", tmp_path / "log"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    driver = subprocess.Popen(
        [sys.executable, checkpoint_driver.__file__, str(directory), str(log)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    reference = checkpoint_driver.build()
    rng = np.random.default_rng(2024)
    known, kills_mid_write = 0, 0
    try:
        for _ in range(20):
            driver.stdin.write("go\n")
            driver.stdin.flush()
            pid = int(driver.stdout.readline())
            time.sleep(rng.uniform(0.02, 0.25))
            os.kill(pid, signal.SIGKILL)
            assert driver.stdout.readline().split() == ["reaped", str(signal.SIGKILL)]

            names = os.listdir(directory) if directory.exists() else []
            kills_mid_write += any(name.endswith(".tmp") for name in names)
            lines = log.read_text().splitlines(keepends=True) if log.exists() else []
            saved = [int(x.split()[1]) for x in lines if x.endswith("\n")]
            known = max(known, saved[-1] if saved else 0)
            found = checkpoint.latest(directory)
            if found is None:
                assert known == 0
                continue
            ck = checkpoint.load(found)
            assert ck.step in (known, known + 1)
            known = ck.step
            while reference.step < ck.step:
                reference.train_step()
            assert_same_state(ck.trainer_state(), reference.state_dict())
    finally:
        driver.stdin.write("quit\n")
        driver.stdin.close()
        driver.wait(timeout=10)
    assert known >= 10  # the runs made progress
    assert kills_mid_write >= 1  # and some kills hit a write in progress
    print(f"final step {known}, {kills_mid_write} of 20 kills left a temporary file")


# ---------------------------------------------------------------------------
# Loading: mismatches and damaged files
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"g_hidden": (16,)}, r"g_hidden \[8\] \(checkpoint\) vs \[16\] \(here\)"),
        ({"dtype": "float64"}, r'dtype "float32" \(checkpoint\) vs "float64"'),
        ({"z_dim": 3, "lr_d": 1e-3}, r"lr_d 0\.0002 .* vs 0\.001 .*; z_dim 4"),
    ],
)
def test_checkpoint_restore_names_configuration_mismatch(tmp_path, overrides, message):
    path = checkpoint.write(tmp_path / "a.npz", make_trainer())
    other = make_trainer(**overrides)
    before = other.state_dict()
    with pytest.raises(CheckpointError, match=message):
        checkpoint.restore(other, path)
    assert_same_state(other.state_dict(), before)


def test_checkpoint_restore_rejects_other_data(tmp_path):
    path = checkpoint.write(tmp_path / "a.npz", make_trainer(), fingerprint="aaaa")
    with pytest.raises(CheckpointError, match="fingerprint aaaa, this data set has bb"):
        checkpoint.restore(make_trainer(), path, fingerprint="bb")
    # A different number of images cannot take the sampler's order either.
    fewer = make_trainer(images=IMAGES[:20])
    with pytest.raises(CheckpointError, match=r"permutation of range\(20\)"):
        checkpoint.restore(fewer, path)


def test_checkpoint_restore_names_array_shape_mismatch(tmp_path):
    path = checkpoint.write(tmp_path / "a.npz", make_trainer())

    def swap(meta, arrays):
        arrays["D/0.W"] = np.zeros((6, 9), np.float32)
        meta["arrays"]["D/0.W"] = [[6, 9], "<f4"]

    rewrite(path, swap)
    trainer = make_trainer()
    before = trainer.state_dict()
    with pytest.raises(CheckpointError, match=r"'0.W' expected \(6, 8\) float32"):
        checkpoint.restore(trainer, path)
    assert_same_state(trainer.state_dict(), before)


def test_trainer_load_state_dict_is_all_or_nothing():
    trainer = make_trainer()
    trainer.run(3)
    state = make_trainer(init_seed=4).state_dict()  # differs everywhere
    state["sampler"]["position"] = 999  # ... and the last part applied is bad
    before = trainer.state_dict()
    with pytest.raises(CheckpointError, match="sampler position"):
        trainer.load_state_dict(state)
    assert_same_state(trainer.state_dict(), before)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path):
    path.write_bytes(np.random.default_rng(0).bytes(3000))


def _flip_payload_byte(path):
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("G/0.W.npy")
    # Inside the stored array data: past the local header and the npy header.
    data[info.header_offset + 200] ^= 0xFF
    path.write_bytes(bytes(data))


def _not_ours(path):
    np.savez(path, x=np.zeros(3))


def _object_array(path):
    rewrite(path, lambda meta, arrays: arrays.update(x=np.array([{}], dtype=object)))


def _manifest_lies(path):
    def change(meta, arrays):
        arrays["G/0.b"] = arrays["G/0.b"].astype(np.float64)

    rewrite(path, change)


def _newer_format(path):
    rewrite(path, lambda meta, arrays: meta.update(format_version=99))


def _missing_meta_field(path):
    rewrite(path, lambda meta, arrays: meta.pop("rng"))


@pytest.mark.parametrize(
    "damage, message",
    [
        (_truncate, "not a readable checkpoint"),
        (_garbage, "not a readable checkpoint"),
        (_flip_payload_byte, "not a readable checkpoint"),
        (_not_ours, "not an npgan checkpoint"),
        (_object_array, "not a readable checkpoint"),
        (_manifest_lies, "array 'G/0.b' is .* the manifest says"),
        (_newer_format, "checkpoint format 99 is newer"),
        (_missing_meta_field, "metadata field 'rng' should be dict"),
    ],
)
def test_checkpoint_load_rejects_damaged_files(tmp_path, damage, message):
    path = checkpoint.write(tmp_path / "a.npz", make_trainer())
    damage(path)
    with pytest.raises(CheckpointError, match=message) as info:
        checkpoint.load(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_checkpoint_load_missing_file_or_empty_directory(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        checkpoint.load(tmp_path / "nope.npz")
    with pytest.raises(CheckpointError, match="no checkpoint-\\*.npz files in"):
        checkpoint.load(tmp_path)


def test_checkpoint_load_warns_about_another_version(tmp_path):
    path = checkpoint.write(tmp_path / "a.npz", make_trainer())
    rewrite(path, lambda meta, arrays: meta.update(npgan_version="0.0.1"))
    with pytest.warns(UserWarning, match="written by npgan 0.0.1"):
        checkpoint.restore(make_trainer(), path)


# ---------------------------------------------------------------------------
# Guards
# ---------------------------------------------------------------------------


def test_checkpoint_refuses_non_finite_state_and_keeps_last_good(tmp_path):
    trainer = make_trainer()
    trainer.run(2)
    good = checkpoint.save(tmp_path, trainer)
    trainer.gan.opt_d.v["2.W"][0, 0] = np.inf
    with pytest.raises(NonFiniteError, match="step 2: discriminator optimizer state"):
        checkpoint.save(tmp_path, trainer)
    assert checkpoint.latest(tmp_path) == good
    assert checkpoint.load(good).step == 2
    assert [p.name for p in tmp_path.iterdir()] == [good.name]


def test_trainer_guard_names_step_and_non_finite_gradient(monkeypatch):
    trainer = make_trainer()
    trainer.run(2)
    backward = trainer.gan.D.backward

    def poisoned(grad, **kwargs):
        out = backward(grad, **kwargs)
        if kwargs.get("param_grads", True):
            trainer.gan.D.grads["2.b"][...] = np.nan
        return out

    monkeypatch.setattr(trainer.gan.D, "backward", poisoned)
    with pytest.raises(
        NonFiniteError, match="step 3: the discriminator's gradient '2.b'"
    ):
        trainer.train_step()
    assert trainer.step == 2 and len(trainer.history["d_loss"]) == 2


def test_trainer_guard_names_step_and_non_finite_parameter(monkeypatch):
    trainer = make_trainer()
    trainer.run(1)
    step = trainer.gan.opt_g.step

    def overflow(grads):
        step(grads)
        trainer.gan.G.params["0.b"][1] = np.inf

    monkeypatch.setattr(trainer.gan.opt_g, "step", overflow)
    with pytest.raises(
        NonFiniteError, match="step 2: generator parameter '0.b' is not finite"
    ):
        trainer.train_step()


def test_checkpointer_saves_every_m_steps_once_per_step(tmp_path):
    trainer = make_trainer()
    saver = checkpoint.Checkpointer(trainer, tmp_path / "c", every=3, keep=5)
    trainer.run(7, callback=saver)
    assert [
        checkpoint.load(p).step for p in checkpoint.list_checkpoints(saver.directory)
    ] == [3, 6]
    assert saver.last.name == "checkpoint-00000006.npz"
    final = saver.save()
    mtime = final.stat().st_mtime_ns
    assert saver.save() == final and final.stat().st_mtime_ns == mtime
    assert checkpoint.load(final).step == 7
    with pytest.raises(ConfigError, match="every must be an integer >= 0"):
        checkpoint.Checkpointer(trainer, tmp_path, every=-1)
