"""A generative adversarial network of two MLPs (Goodfellow et al., 2014).

The generator ``G`` maps noise ``z ~ N(0, I)`` of shape (N, Z) to samples of
shape (N, X) in [-1, 1] (a tanh output). The discriminator ``D`` maps samples
(N, X) to one logit each, (N, 1); ``sigmoid(logit)`` is its probability that
the sample is real. Working on logits keeps every loss finite (see
:mod:`npgan.losses`).

One training iteration is Algorithm 1 of the paper: ``k`` discriminator steps,
then one generator step.

Discriminator step
    Real batch (N, X) and fake batch ``G(z)`` (N, X) go through ``D`` in one
    call, stacked to (2N, X), with targets 1 and 0. The loss is
    binary cross-entropy on logits, **mean over the 2N samples**, which is
    ``-(1/2) [mean log D(x) + mean log(1 - D(G(z)))]``: half the negated value
    function. ``G`` only runs forward, so its parameters and gradients are
    left bitwise unchanged.

Generator step
    Fresh noise, ``G(z)`` through ``D``, then the generator loss (mean over
    the N samples) is backpropagated through ``D`` with ``param_grads=False``:
    the discriminator is frozen, and its weights and weight gradients are
    neither changed nor computed. The default loss is the non-saturating
    ``-log D(G(z))``; the minimax ``log(1 - D(G(z)))`` has the same fixed point
    but a gradient that vanishes when ``D`` rejects the fakes confidently,
    which it does early in training.
"""

import copy
from dataclasses import asdict, dataclass

import numpy as np

from npgan.errors import ConfigError, NonFiniteError
from npgan.functional import sigmoid
from npgan.layers import LeakyReLU, Tanh, mlp
from npgan.losses import GENERATOR_LOSSES, bce_with_logits, generator_loss
from npgan.optim import Adam

__all__ = ["GANConfig", "GAN"]

_DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class GANConfig:
    """Hyper-parameters of a GAN. Frozen: a run's configuration never changes.

    The defaults are the common MLP recipe for MNIST.

    Attributes
    ----------
    z_dim : int
        Noise dimension ``Z``; noise is standard normal.
    data_dim : int
        Sample dimension ``X`` (784 for 28 x 28 images).
    g_hidden, d_hidden : tuple of int
        Hidden widths of the generator and the discriminator.
    slope : float
        Negative slope of the LeakyReLU hidden units.
    lr_g, lr_d : float
        Adam step sizes.
    beta1, beta2 : float
        Adam's moment decay rates, shared by both optimizers.
    batch_size : int
        ``N``, real samples per discriminator step and fakes per step.
    k : int
        Discriminator steps per generator step.
    loss : {"non-saturating", "minimax"}
        The generator's loss.
    init : {"glorot", "he"}
        Weight initialisation of every dense layer.
    dtype : {"float32", "float64"}
    ema : float
        Decay ``beta`` of an exponential moving average of the generator's
        weights (Yazici et al., 2019), in [0, 1); 0 keeps no average. See
        :attr:`GAN.G_ema`.
    """

    z_dim: int = 100
    data_dim: int = 784
    g_hidden: tuple = (256, 512, 1024)
    d_hidden: tuple = (1024, 512, 256)
    slope: float = 0.2
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 64
    k: int = 1
    loss: str = "non-saturating"
    init: str = "glorot"
    dtype: str = "float32"
    ema: float = 0.0

    def __post_init__(self):
        def whole(name, low):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
            if value < low:
                raise ConfigError(f"{name} must be an integer >= {low}, got {value}")

        for name in ("z_dim", "data_dim", "batch_size", "k"):
            whole(name, 1)
        for name in ("g_hidden", "d_hidden"):
            widths = getattr(self, name)
            if not isinstance(widths, (tuple, list)) or not all(
                isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w >= 1
                for w in widths
            ):
                raise ConfigError(
                    f"{name} must be a tuple of integers >= 1, got {widths!r}"
                )
            object.__setattr__(self, name, tuple(int(w) for w in widths))
        for name in ("lr_g", "lr_d"):
            value = getattr(self, name)
            if not (
                isinstance(value, (int, float)) and np.isfinite(value) and value > 0
            ):
                raise ConfigError(f"{name} must be a positive number, got {value!r}")
        for name in ("beta1", "beta2", "ema"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value < 1.0):
                raise ConfigError(f"{name} must lie in [0, 1), got {value!r}")
        if not (isinstance(self.slope, (int, float)) and 0.0 <= self.slope < 1.0):
            raise ConfigError(f"slope must lie in [0, 1), got {self.slope!r}")
        if self.loss not in GENERATOR_LOSSES:
            raise ConfigError(
                f"loss must be one of {GENERATOR_LOSSES}, got {self.loss!r}"
            )
        if self.init not in ("glorot", "he"):
            raise ConfigError(f"init must be 'glorot' or 'he', got {self.init!r}")
        if self.dtype not in _DTYPES:
            raise ConfigError(f"dtype must be one of {_DTYPES}, got {self.dtype!r}")

    def to_dict(self):
        """Plain dict of the fields (tuples become lists), for JSON."""
        d = asdict(self)
        d["g_hidden"] = list(self.g_hidden)
        d["d_hidden"] = list(self.d_hidden)
        return d

    @classmethod
    def from_dict(cls, d):
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"unknown configuration keys {unknown}")
        return cls(**d)


class GAN:
    """Generator, discriminator and their two Adam optimizers.

    Parameters
    ----------
    config : GANConfig
    rng : numpy.random.Generator
        Draws the initial weights (the generator's first, then the
        discriminator's).

    Attributes
    ----------
    G : Sequential
        (N, Z) -> (N, X), tanh output.
    D : Sequential
        (N, X) -> (N, 1) logits.
    opt_g, opt_d : Adam
        One per network; they share no state.
    G_ema : Sequential or None
        With ``config.ema > 0``, a second generator of the same architecture
        holding an exponential moving average of ``G``'s weights; None
        otherwise. It starts as a copy of ``G``'s initial weights (drawing
        nothing from ``rng``) and after the ``t``-th generator step becomes
        ``beta_t * G_ema + (1 - beta_t) * G`` with the warm-up
        ``beta_t = min(ema, (1 + t) / (10 + t))`` (``t`` is ``opt_g.t``, so a
        restored optimizer restores the schedule), so that the random initial
        weights are forgotten quickly in short runs. It is never trained;
        :meth:`generate` samples from it.
    """

    def __init__(self, config, *, rng):
        if not isinstance(config, GANConfig):
            raise TypeError(
                f"GAN: config must be a GANConfig, got {type(config).__name__}"
            )
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"GAN: rng must be a numpy.random.Generator, got {type(rng).__name__}"
            )
        c = config
        self.config = c
        self.dtype = np.dtype(c.dtype)

        def hidden():
            return LeakyReLU(c.slope)

        self.G = mlp(
            [c.z_dim, *c.g_hidden, c.data_dim],
            rng=rng,
            hidden_activation=hidden,
            output_activation=Tanh,
            init=c.init,
            dtype=self.dtype,
        )
        self.D = mlp(
            [c.data_dim, *c.d_hidden, 1],
            rng=rng,
            hidden_activation=hidden,
            init=c.init,
            dtype=self.dtype,
        )
        betas = (c.beta1, c.beta2)
        self.opt_g = Adam(self.G.params, lr=c.lr_g, betas=betas)
        self.opt_d = Adam(self.D.params, lr=c.lr_d, betas=betas)
        self.G_ema = None
        if c.ema > 0:
            self.G_ema = copy.deepcopy(self.G)
            self._ema_scratch = np.empty(
                max(p.size for p in self.G.params.values()), dtype=self.dtype
            )
        # Targets of a discriminator step: N ones (real) then N zeros (fake).
        self._targets = _targets(c.batch_size, self.dtype)
        # Arrays of a training step, per batch size, reused by every step.
        self._step_buffers = {}

    def _buffers(self, n):
        """The step's arrays for batch size ``n``; the two last sizes are kept."""
        buffers = self._step_buffers.get(n)
        if buffers is None:
            if len(self._step_buffers) >= 2:
                self._step_buffers.pop(next(iter(self._step_buffers)))
            z, x = self.config.z_dim, self.config.data_dim
            buffers = self._step_buffers[n] = {
                "z": np.empty((n, z), dtype=self.dtype),  # noise
                "both": np.empty((2 * n, x), dtype=self.dtype),  # real over fake
                "fake": np.empty((n, x), dtype=self.dtype),  # G(z), generator step
                "grad_fake": np.empty((n, x), dtype=self.dtype),  # dLoss/dG(z)
            }
        return buffers

    def noise(self, n, rng):
        """Standard normal noise, shape (n, Z), in the model's dtype."""
        return rng.standard_normal((n, self.config.z_dim), dtype=self.dtype)

    def sampler_net(self):
        """The generator to sample from: :attr:`G_ema` if kept, else ``G``."""
        return self.G if self.G_ema is None else self.G_ema

    def generate(self, z):
        """Samples of :meth:`sampler_net` at ``z``: (n, Z) -> (n, X) in [-1, 1].

        Training itself always runs the raw ``G``.
        """
        return self.sampler_net().forward(z)

    def discriminate(self, x):
        """Probabilities ``D(x)`` that samples are real: (n, X) -> (n,)."""
        return sigmoid(self.D.forward(x)[:, 0])

    def discriminator_step(self, real, rng):
        """One update of ``D`` on a real batch and as many fresh fakes.

        Parameters
        ----------
        real : ndarray, shape (N, X), in the model's dtype
        rng : numpy.random.Generator
            Draws the noise of the fakes.

        Returns
        -------
        dict with ``d_loss`` (mean BCE over the 2N samples), ``d_real``
        (mean D(x)) and ``d_fake`` (mean D(G(z)) before the update).
        """
        n = real.shape[0]
        if real.ndim != 2 or real.shape[1] != self.config.data_dim:
            raise ValueError(
                f"GAN.discriminator_step: expected real of shape (N, "
                f"{self.config.data_dim}), got {real.shape}"
            )
        if real.dtype != self.dtype:
            raise TypeError(
                f"GAN.discriminator_step: expected real of dtype {self.dtype}, "
                f"got {real.dtype}"
            )
        buffers = self._buffers(n)
        z = buffers["z"]
        rng.standard_normal(out=z, dtype=self.dtype)  # as noise(n, rng) draws it
        # (2N, X): one pass for both halves. The real batch is copied into the
        # top half and G writes the fakes straight into the bottom half; G is
        # not updated.
        both = buffers["both"]
        np.copyto(both[:n], real)
        self.G.forward(z, out=both[n:])
        logits = self.D.forward(both)  # (2N, 1)
        _check_finite("discriminator logits", logits)
        targets = (
            self._targets if n == self.config.batch_size else _targets(n, self.dtype)
        )
        loss, grad = bce_with_logits(logits, targets)  # grad (2N, 1)
        # The images are constants: skip the first layer's input gradient.
        self.D.backward(grad, input_grad=False)
        self.opt_d.step(self.D.grads)
        p = sigmoid(logits[:, 0])  # (2N,)
        return {
            "d_loss": loss,
            "d_real": float(p[:n].mean()),
            "d_fake": float(p[n:].mean()),
        }

    def generator_gradients(self, z):
        """Set ``G.grads`` to the gradient of the generator loss at noise ``z``.

        The discriminator is frozen: its parameters and gradients are left
        bitwise unchanged. Nothing is updated.

        Parameters
        ----------
        z : ndarray, shape (N, Z), in the model's dtype

        Returns
        -------
        loss : float
            Generator loss, mean over the N samples.
        logits : ndarray, shape (N, 1)
            The discriminator's logits for ``G(z)``.
        """
        buffers = self._buffers(z.shape[0])
        fake = self.G.forward(z, out=buffers["fake"])  # (N, X)
        logits = self.D.forward(fake)  # (N, 1)
        _check_finite("discriminator logits", logits)
        loss, grad = generator_loss(logits, self.config.loss)  # grad (N, 1)
        # Through D without touching its weight gradients, then into G.
        grad_fake = self.D.backward(
            grad, param_grads=False, out=buffers["grad_fake"]
        )  # (N, X)
        self.G.backward(grad_fake, input_grad=False)
        return loss, logits

    def generator_step(self, rng):
        """One update of ``G`` through the frozen discriminator.

        Returns
        -------
        dict with ``g_loss`` (mean over N fakes), ``g_grad_norm`` (Euclidean
        norm of all of G's parameter gradients, before the update) and
        ``d_fake_g`` (mean D(G(z)) the generator saw).
        """
        z = self._buffers(self.config.batch_size)["z"]
        rng.standard_normal(out=z, dtype=self.dtype)  # as noise(N, rng) draws it
        loss, logits = self.generator_gradients(z)
        norm = float(np.sqrt(sum(float(np.vdot(g, g)) for g in self.G.grads.values())))
        if not np.isfinite(norm):
            raise NonFiniteError("the generator's gradient is not finite")
        self.opt_g.step(self.G.grads)
        if self.G_ema is not None:
            self._update_ema()
        return {
            "g_loss": loss,
            "g_grad_norm": norm,
            "d_fake_g": float(sigmoid(logits[:, 0]).mean()),
        }

    def _update_ema(self):
        """One step of the average: ``G_ema = b * G_ema + (1 - b) * G``, in place."""
        t = self.opt_g.t  # generator steps so far, this one included
        beta = min(self.config.ema, (1 + t) / (10 + t))
        for name, avg in self.G_ema.params.items():
            p = self.G.params[name]
            scratch = self._ema_scratch[: p.size].reshape(p.shape)
            np.multiply(p, 1.0 - beta, out=scratch)
            avg *= beta
            avg += scratch

    def check_finite(self):
        """Raise :class:`NonFiniteError` naming the first non-finite parameter."""
        for net, label in ((self.G, "generator"), (self.D, "discriminator")):
            for name, p in net.params.items():
                if not np.all(np.isfinite(p)):
                    raise NonFiniteError(f"{label} parameter '{name}' is not finite")


def _targets(n, dtype):
    return np.concatenate([np.ones(n), np.zeros(n)]).astype(dtype)


def _check_finite(what, a):
    if not np.all(np.isfinite(a)):
        raise NonFiniteError(f"{what} are not finite")
