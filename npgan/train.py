"""The training loop: minibatches in, one GAN iteration per step, a history out.

A :class:`Trainer` owns everything that changes while a run goes on: the GAN
(parameters and optimizer moments), the minibatch sampler (position in the
epoch's shuffled order), the one random generator that draws the
permutations and the noise, the step counter and the history. Saving those
and nothing else is enough to resume a run exactly.

The data stay uint8 in memory, (M, 28, 28) or (M, X); each batch is scaled
to [-1, 1] in the model's dtype when it is drawn.
"""

import numpy as np

from npgan.data import EpochSampler, to_unit
from npgan.errors import NonFiniteError
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

    @property
    def epoch(self):
        """Completed passes over the data."""
        return self.sampler.epoch

    def _real_batch(self):
        idx = self.sampler.next_batch()  # (N,)
        return to_unit(self.images[idx]).astype(self.gan.dtype, copy=False)  # (N, X)

    def train_step(self):
        """One iteration: ``k`` discriminator steps, then one generator step.

        Returns
        -------
        dict
            The row appended to :attr:`history`.

        Raises
        ------
        NonFiniteError
            If a loss or the generator's gradient norm is not finite; the
            message names the step (counting from 1) and the quantity.
        """
        gan, number = self.gan, self.step + 1
        try:
            # Discriminator: k steps, each on a fresh real batch and fresh fakes.
            for _ in range(gan.config.k):
                d = gan.discriminator_step(self._real_batch(), self.rng)
            # Generator: one step through the frozen discriminator.
            g = gan.generator_step(self.rng)
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
                    bar.update(1)
                    bar.set_postfix(
                        d_loss=f"{row['d_loss']:.3f}",
                        g_loss=f"{row['g_loss']:.3f}",
                        D_x=f"{row['d_real']:.2f}",
                        D_G_z=f"{row['d_fake']:.2f}",
                        refresh=False,
                    )
                if callback is not None:
                    callback(self, row)
        finally:
            if bar is not None:
                bar.close()
