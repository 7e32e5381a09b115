"""The training loop: minibatches in, one GAN iteration per step, a history out.

A :class:`Trainer` owns everything that changes while a run goes on: the GAN
(parameters and optimizer moments), the minibatch sampler (position in the
epoch's shuffled order), the one random generator that draws the
permutations and the noise, the step counter and the history. Saving those
and nothing else is enough to resume a run exactly.

The data stay uint8 in memory, (M, 28, 28) or (M, X); each batch is scaled
to [-1, 1] in the model's dtype when it is drawn.
"""

import copy
from numbers import Integral

import numpy as np

from npgan.data import EpochSampler, to_unit
from npgan.errors import CheckpointError, NonFiniteError
from npgan.gan import GAN

__all__ = ["HISTORY_KEYS", "Trainer"]

#: Columns of the per-step history, in order.
HISTORY_KEYS = (
    "step",
    "epoch",
    "d_loss",
    "g_loss",
    "d_real",
    "d_fake",
    "g_grad_norm",
)


class Trainer:
    """Runs Algorithm 1 of Goodfellow et al. (2014) over a data set.

    Parameters
    ----------
    gan : GAN
    images : ndarray of uint8, shape (M, 28, 28) or (M, X)
        Training images, kept as they are and scaled per batch.
    rng : numpy.random.Generator
        The run's only source of randomness after initialisation: epoch
        permutations and noise.

    Attributes
    ----------
    step : int
        Iterations completed (each is ``k`` discriminator steps and one
        generator step).
    history : dict of str -> list
        One entry per iteration for each of :data:`HISTORY_KEYS`. With
        ``k > 1`` the discriminator columns are those of the last of the
        ``k`` steps.
    """

    def __init__(self, gan, images, *, rng):
        if not isinstance(gan, GAN):
            raise TypeError(f"Trainer: gan must be a GAN, got {type(gan).__name__}")
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise TypeError(f"Trainer: images must be uint8, got {images.dtype}")
        flat = images.reshape(len(images), -1)  # (M, X), a view
        if flat.shape[1] != gan.config.data_dim:
            raise ValueError(
                f"Trainer: images have {flat.shape[1]} pixels each, the GAN "
                f"expects data_dim={gan.config.data_dim}"
            )
        self.gan = gan
        self.images = flat
        self.rng = rng
        self.sampler = EpochSampler(len(flat), gan.config.batch_size, rng)
        self.step = 0
        self.history = {key: [] for key in HISTORY_KEYS}
        self._pixels = self._real = None  # the batch buffers of _real_batch

    @property
    def epoch(self):
        """Completed passes over the data."""
        return self.sampler.epoch

    def _real_batch(self):
        idx = self.sampler.next_batch()  # (N,)
        if self.gan.dtype != np.float32:
            return to_unit(self.images[idx]).astype(self.gan.dtype)  # (N, X)
        # The same arithmetic as to_unit, float32(pixel) / 127.5 - 1, in two
        # arrays kept from step to step.
        if self._pixels is None or len(self._pixels) != len(idx):
            self._pixels = np.empty((len(idx), self.images.shape[1]), np.uint8)
            self._real = np.empty(self._pixels.shape, np.float32)
        # mode="clip" lets take write straight into out (the indices are valid).
        np.take(self.images, idx, axis=0, out=self._pixels, mode="clip")
        np.divide(self._pixels, np.float32(127.5), out=self._real, dtype=np.float32)
        np.subtract(self._real, np.float32(1.0), out=self._real)
        return self._real

    def train_step(self):
        """One iteration: ``k`` discriminator steps, then one generator step.

        Returns
        -------
        dict
            The row appended to :attr:`history`.

        Raises
        ------
        NonFiniteError
            If a loss, the discriminator's logits, a gradient or a parameter
            is not finite after the iteration; the message names the step
            (counting from 1) and the quantity. :attr:`step` and
            :attr:`history` are then left as they were, but the parameters
            may already hold the bad values: restore from a checkpoint.
        """
        gan, number = self.gan, self.step + 1
        # NumPy's own floating-point warnings are silenced here: every
        # quantity they could be about is checked explicitly below and
        # reported once, as a NonFiniteError naming the step.
        with np.errstate(all="ignore"):
            return self._train_step(gan, number)

    def _train_step(self, gan, number):
        try:
            # Discriminator: k steps, each on a fresh real batch and fresh fakes.
            for _ in range(gan.config.k):
                d = gan.discriminator_step(self._real_batch(), self.rng)
                # A bad gradient is already in the parameters; name it first.
                _check_grads(gan.D.grads, "discriminator")
            # Generator: one step through the frozen discriminator (its
            # gradient norm is checked inside).
            g = gan.generator_step(self.rng)
            gan.check_finite()
        except NonFiniteError as err:
            raise NonFiniteError(f"step {number}: {err}") from None
        row = {
            "step": number,
            "epoch": self.sampler.epoch,
            "d_loss": d["d_loss"],
            "g_loss": g["g_loss"],
            "d_real": d["d_real"],
            "d_fake": d["d_fake"],
            "g_grad_norm": g["g_grad_norm"],
        }
        for key in ("d_loss", "g_loss"):
            if not np.isfinite(row[key]):
                raise NonFiniteError(f"step {number}: {key} is {row[key]}")
        self.step = number
        for key in HISTORY_KEYS:
            self.history[key].append(row[key])
        return row

    def state_dict(self):
        """Everything a run needs to continue exactly, as plain values.

        Returns
        -------
        dict
            ``"step"`` (int), ``"G"``, ``"D"`` (parameter copies, see
            ``Sequential.state_dict``), ``"opt_g"``, ``"opt_d"`` (step counts
            and moment copies, see ``Adam.state_dict``), ``"sampler"`` (see
            ``EpochSampler.state_dict``), ``"rng"`` (a copy of
            ``rng.bit_generator.state``, a dict of ints and strings) and
            ``"history"`` (a copy of :attr:`history`). The images are not
            included. With ``config.ema > 0`` also ``"G_ema"``, the averaged
            generator's parameter copies.
        """
        gan = self.gan
        state = {
            "step": int(self.step),
            "G": gan.G.state_dict(),
            "D": gan.D.state_dict(),
            "opt_g": gan.opt_g.state_dict(),
            "opt_d": gan.opt_d.state_dict(),
            "sampler": self.sampler.state_dict(),
            "rng": copy.deepcopy(self.rng.bit_generator.state),
            "history": {key: list(self.history[key]) for key in HISTORY_KEYS},
        }
        if gan.G_ema is not None:
            state["G_ema"] = gan.G_ema.state_dict()
        return state

    def load_state_dict(self, state):
        """Restore a state from :meth:`state_dict`; all or nothing.

        The trainer must hold a GAN of the same configuration and images of
        the same count. After this call the next :meth:`train_step` does what
        the saved trainer's next step would have done, bit for bit.

        Raises
        ------
        CheckpointError
            If a part is missing or does not fit (names, shapes, dtypes, the
            sampler's range, the random generator's type, history lengths);
            the trainer is then unchanged.
        """
        parts = ("step", "G", "D", "opt_g", "opt_d", "sampler", "rng", "history")
        if self.gan.G_ema is not None:
            parts += ("G_ema",)
        missing = [key for key in parts if key not in state]
        if missing:
            raise CheckpointError(f"trainer state lacks {missing}")
        step = state["step"]
        if isinstance(step, bool) or not isinstance(step, Integral) or step < 0:
            raise CheckpointError(f"trainer step must be an int >= 0, got {step!r}")
        history = state["history"]
        if set(history) != set(HISTORY_KEYS):
            raise CheckpointError(
                f"trainer history has columns {sorted(history)}, expected "
                f"{sorted(HISTORY_KEYS)}"
            )
        for key in HISTORY_KEYS:
            if len(history[key]) != step:
                raise CheckpointError(
                    f"trainer history column '{key}' has {len(history[key])} "
                    f"entries, expected one per step ({step})"
                )
        rng_state = state["rng"]
        ours = type(self.rng.bit_generator).__name__
        theirs = rng_state.get("bit_generator") if isinstance(rng_state, dict) else None
        if theirs != ours:
            raise CheckpointError(
                f"random generator state is for {theirs!r}, this trainer uses {ours!r}"
            )
        backup = self.state_dict()
        try:
            self._apply(state)
        except (ValueError, TypeError, KeyError) as err:
            self._apply(backup)
            if isinstance(err, CheckpointError):
                raise
            raise CheckpointError(str(err)) from err

    def _apply(self, state):
        gan = self.gan
        gan.G.load_state_dict(state["G"])
        gan.D.load_state_dict(state["D"])
        if gan.G_ema is not None:
            gan.G_ema.load_state_dict(state["G_ema"])
        gan.opt_g.load_state_dict(state["opt_g"])
        gan.opt_d.load_state_dict(state["opt_d"])
        # The sampler's state excludes the generator; set the generator after.
        self.sampler.load_state_dict(state["sampler"])
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        self.step = int(state["step"])
        self.history = {key: list(state["history"][key]) for key in HISTORY_KEYS}

    def run(self, steps, *, callback=None, progress=False):
        """Run ``steps`` more iterations.

        Parameters
        ----------
        steps : int
            Iterations to run, >= 0.
        callback : callable or None
            ``callback(trainer, row)`` after every iteration; ``row["epoch"]``
            increasing marks the end of an epoch.
        progress : bool
            Show a tqdm progress bar with the latest losses, D(x) and D(G(z)).
        """
        if (
            isinstance(steps, bool)
            or not isinstance(steps, (int, np.integer))
            or steps < 0
        ):
            raise ValueError(
                f"Trainer.run: steps must be an integer >= 0, got {steps!r}"
            )
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=int(steps), unit="it", dynamic_ncols=True)
        try:
            for _ in range(int(steps)):
                row = self.train_step()
                if bar is not None:
                    # Postfix first: update() then draws this step's numbers.
                    bar.set_postfix(
                        d_loss=f"{row['d_loss']:.3f}",
                        g_loss=f"{row['g_loss']:.3f}",
                        D_x=f"{row['d_real']:.2f}",
                        D_G_z=f"{row['d_fake']:.2f}",
                        refresh=False,
                    )
                    bar.update(1)
                if callback is not None:
                    callback(self, row)
        finally:
            if bar is not None:
                bar.close()


def _check_grads(grads, label):
    for name, grad in grads.items():
        if not np.isfinite(grad).all():
            raise NonFiniteError(f"the {label}'s gradient '{name}' is not finite")
