"""A training run end to end: data in, pictures, history and networks out.

This is the one code path behind ``npgan train`` and ``examples/mnist.py``.
:class:`TrainingRun` owns a :class:`~npgan.train.Trainer`, the fixed noise of
the sample grids and the output directory; :meth:`TrainingRun.train` is the
only training loop, and :meth:`TrainingRun.finish` writes the final files.
:func:`train` strings the three together.

Files written into ``out_dir``
------------------------------
``samples/epoch_NNNN.png``
    Grid of ``G(z)`` for the fixed noise after each completed epoch (from the
    averaged generator when ``config.ema > 0``, see
    :meth:`npgan.gan.GAN.generate`).
``samples_final.png``
    The same grid after the last step.
``curves.png``
    Both losses; ``D(x)`` and ``D(G(z))`` with the 0.5 equilibrium line.
``history.csv``
    One row per step, columns :data:`npgan.train.HISTORY_KEYS`.
``model.npz``
    The final generator and discriminator, see :func:`save_model`.
``run.json``
    What was run: configuration, seed, data source, steps, wall time.

Model files
-----------
:func:`save_model` stores the parameters as plain arrays named
``G/<name>`` and ``D/<name>`` (names as in ``Sequential.params``; with
``config.ema > 0`` also the averaged generator ``G_ema/<name>``, the one
:meth:`~npgan.gan.GAN.generate` samples from), the
configuration as a one-element string array ``config`` holding
``GANConfig.to_dict()`` as JSON, and a format tag, so the file loads with
``numpy.load(path, allow_pickle=False)`` and :func:`load_model` can rebuild
both networks.
"""

import csv
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from npgan._io import load_npz
from npgan.errors import CheckpointError
from npgan.gan import GAN, GANConfig
from npgan.train import HISTORY_KEYS, Trainer

__all__ = [
    "MODEL_FORMAT",
    "TrainingRun",
    "fixed_noise",
    "load_model",
    "save_model",
    "train",
    "write_history_csv",
]

logger = logging.getLogger(__name__)

#: Format tag stored in every model file.
MODEL_FORMAT = "npgan-model-v1"

#: Samples in every grid (10 x 10).
GRID_SAMPLES = 100


def fixed_noise(config, seed, n=GRID_SAMPLES):
    """The noise of a run's sample grids: the same for every epoch.

    It comes from its own generator (seeded by ``seed`` and a fixed tag), so
    it does not depend on, or disturb, the training run's random stream, and a
    resumed run can redraw it from the seed alone.

    Parameters
    ----------
    config : GANConfig
    seed : int
    n : int

    Returns
    -------
    ndarray of shape (n, Z), in the configuration's dtype
    """
    rng = np.random.default_rng([int(seed), 0x5A17])
    return rng.standard_normal((n, config.z_dim), dtype=np.dtype(config.dtype))


def save_model(path, gan, **extra):
    """Write a GAN's two networks and its configuration to an ``.npz`` file.

    Parameters
    ----------
    path : str or os.PathLike
        Destination; written to a temporary name first and renamed, so a
        reader never sees half a file.
    gan : GAN
    **extra : scalar or ndarray
        Further plain arrays to store (e.g. ``step``); no objects.
    """
    path = Path(path)
    arrays = {"format": np.array([MODEL_FORMAT])}
    arrays["config"] = np.array([json.dumps(gan.config.to_dict(), sort_keys=True)])
    for prefix, net in _nets(gan):
        for name, value in net.params.items():
            arrays[f"{prefix}/{name}"] = value
    for name, value in extra.items():
        arrays[name] = np.asarray(value)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)


def load_model(path):
    """Rebuild the GAN saved by :func:`save_model`.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    GAN
        Both networks (and ``G_ema`` if the configuration keeps one) with
        the stored parameters; fresh optimizers.

    Raises
    ------
    CheckpointError
        If the file is missing, not an npgan model file, or its parameters do
        not fit the stored configuration.
    """
    path = Path(path)
    arrays = load_npz(path, "model file")
    if "format" not in arrays or str(arrays["format"].reshape(-1)[0]) != MODEL_FORMAT:
        raise CheckpointError(
            f"{path}: not an npgan model file (expected format {MODEL_FORMAT!r})"
        )
    try:
        config = GANConfig.from_dict(json.loads(str(arrays["config"].reshape(-1)[0])))
    except (KeyError, IndexError, json.JSONDecodeError, TypeError) as exc:
        raise CheckpointError(f"{path}: unreadable configuration ({exc})") from None
    except ValueError as exc:
        raise CheckpointError(f"{path}: invalid configuration ({exc})") from None
    gan = GAN(config, rng=np.random.default_rng(0))
    for prefix, net in _nets(gan):
        state = {
            name[len(prefix) + 1 :]: value
            for name, value in arrays.items()
            if name.startswith(prefix + "/")
        }
        try:
            net.load_state_dict(state)
        except ValueError as exc:
            raise CheckpointError(f"{path}: {prefix} does not fit: {exc}") from None
    return gan


def _nets(gan):
    """(prefix, network) pairs of a model file: G, D and, if kept, G_ema."""
    nets = [("G", gan.G), ("D", gan.D)]
    if gan.G_ema is not None:
        nets.append(("G_ema", gan.G_ema))
    return nets


def write_history_csv(path, history):
    """Write a Trainer history as CSV: a header, then one row per step.

    Parameters
    ----------
    path : str or os.PathLike
    history : mapping of str -> sequence
        The columns :data:`npgan.train.HISTORY_KEYS`, all of one length.
    """
    columns = [history[key] for key in HISTORY_KEYS]
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HISTORY_KEYS)
        for row in zip(*columns, strict=True):
            writer.writerow([_csv_value(v) for v in row])


def _csv_value(value):
    if isinstance(value, (int, np.integer)):
        return int(value)
    return repr(float(value))


class TrainingRun:
    """One training run writing into an output directory.

    Parameters
    ----------
    config : GANConfig
    images : ndarray of uint8, shape (M, 28, 28) or (M, X)
        The training images.
    out_dir : str or os.PathLike
        Created if missing; existing files of the same names are replaced.
    seed : int
        Seeds the run's random generator (initial weights, then batches and
        noise) and, separately, the fixed noise of the grids.
    info : mapping or None
        Extra facts stored in ``run.json`` (data source, command line...).

    Attributes
    ----------
    trainer : Trainer
        Holds the GAN, the sampler, the generator and the history.
    fixed_z : ndarray, shape (100, Z)
        Noise of the sample grids.
    seconds : float
        Wall time spent inside :meth:`train`.
    """

    def __init__(self, config, images, out_dir, *, seed=0, info=None):
        if not isinstance(config, GANConfig):
            raise TypeError(
                f"TrainingRun: config must be a GANConfig, got {type(config).__name__}"
            )
        self.config = config
        self.seed = int(seed)
        self.out_dir = Path(out_dir)
        self.samples_dir = self.out_dir / "samples"
        self.samples_dir.mkdir(parents=True, exist_ok=True)
        self.info = dict(info or {})
        rng = np.random.default_rng(self.seed)
        gan = GAN(config, rng=rng)
        self.trainer = Trainer(gan, images, rng=rng)
        self.fixed_z = fixed_noise(config, self.seed)
        self.seconds = 0.0
        self._last_epoch = self.trainer.epoch

    @property
    def gan(self):
        """The GAN being trained."""
        return self.trainer.gan

    def save_samples(self, path):
        """Write the grid of ``G(fixed_z)`` to ``path`` (PNG)."""
        from npgan.plotting import save_grid

        save_grid(path, self.gan.generate(self.fixed_z), ncol=10)

    def on_step(self, trainer, row):
        """Called after every step: writes a sample grid when an epoch ends."""
        if row["epoch"] > self._last_epoch:
            self._last_epoch = row["epoch"]
            self.save_samples(self.samples_dir / f"epoch_{row['epoch']:04d}.png")

    def restore(self, checkpoint, *, fingerprint=None):
        """Continue a saved run: load a checkpoint into :attr:`trainer`.

        Parameters
        ----------
        checkpoint : npgan.checkpoint.Checkpoint
            Of a run with this configuration on these images.
        fingerprint : str or None
            The images' data fingerprint, compared with the stored one.

        Raises
        ------
        CheckpointError
            If the checkpoint does not fit (see :func:`npgan.checkpoint.restore`).
        """
        from npgan.checkpoint import restore

        restore(self.trainer, checkpoint, fingerprint=fingerprint)
        self._last_epoch = self.trainer.epoch
        self.seconds = float(checkpoint.extra.get("seconds", 0.0))

    def train(self, steps, *, progress=False, callbacks=()):
        """Run ``steps`` more iterations; the run's only training loop.

        Parameters
        ----------
        steps : int
            Iterations, >= 0.
        progress : bool
            Show a tqdm bar with the losses, D(x) and D(G(z)).
        callbacks : sequence of callables
            Each is called as ``callback(run, row)`` after every step, after
            the epoch grid is written.
        """
        callbacks = tuple(callbacks)

        def after_step(trainer, row):
            self.on_step(trainer, row)
            for callback in callbacks:
                callback(self, row)

        start = time.perf_counter()
        try:
            self.trainer.run(steps, callback=after_step, progress=progress)
        finally:
            self.seconds += time.perf_counter() - start

    def finish(self):
        """Write the final grid, the curves, the history, the model, run.json.

        Returns
        -------
        dict of str -> Path
            The files written, by kind.
        """
        from npgan.plotting import save_curves

        out = self.out_dir
        files = {
            "samples": out / "samples_final.png",
            "curves": out / "curves.png",
            "history": out / "history.csv",
            "model": out / "model.npz",
            "summary": out / "run.json",
        }
        trainer = self.trainer
        self.save_samples(files["samples"])
        if trainer.step > 0:
            save_curves(
                files["curves"],
                trainer.history,
                title=f"{self.info.get('data', 'training')}: {trainer.step} steps",
            )
        write_history_csv(files["history"], trainer.history)
        save_model(files["model"], self.gan, step=trainer.step, epoch=trainer.epoch)
        rate = trainer.step / self.seconds if self.seconds > 0 else None
        summary = {
            **self.info,
            "config": self.config.to_dict(),
            "seed": self.seed,
            "steps": trainer.step,
            "epochs_completed": trainer.epoch,
            "seconds": round(self.seconds, 2),
            "steps_per_second": None if rate is None else round(rate, 3),
        }
        files["summary"].write_text(json.dumps(summary, indent=2) + "\n")
        if trainer.step == 0:
            del files["curves"]
        return files


def train(
    config, images, out_dir, *, steps, seed=0, progress=False, callbacks=(), info=None
):
    """Train a GAN and write every output file; see the module docstring.

    Parameters
    ----------
    config : GANConfig
    images : ndarray of uint8, shape (M, 28, 28) or (M, X)
    out_dir : str or os.PathLike
    steps : int
        Iterations to run.
    seed : int
    progress : bool
    callbacks : sequence of callables
        ``callback(run, row)`` after every step.
    info : mapping or None
        Extra entries for ``run.json``.

    Returns
    -------
    run : TrainingRun
    files : dict of str -> Path
    """
    run = TrainingRun(config, images, out_dir, seed=seed, info=info)
    logger.info(
        "training %d steps (%.1f epochs of %d images), output in %s",
        steps,
        steps * config.k / run.trainer.sampler.batches_per_epoch,
        run.trainer.sampler.n,
        run.out_dir,
    )
    run.train(steps, progress=progress, callbacks=callbacks)
    files = run.finish()
    return run, files
