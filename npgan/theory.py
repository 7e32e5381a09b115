"""The theory of the original GAN paper, made runnable in one dimension.

Goodfellow et al. (2014) derive four facts about the game

    V(D, G) = E_{x ~ p_data}[log D(x)] + E_{x ~ p_g}[log(1 - D(x))]

that this module computes directly, on 1D densities whose log-density is known
in closed form:

1. For a fixed generator distribution ``p_g`` the best discriminator is
   ``D*(x) = p_data(x) / (p_data(x) + p_g(x))``
   (:func:`optimal_discriminator`, :func:`optimal_discriminator_logit`).
2. At that discriminator ``V(D*, G) = -log 4 + 2 JSD(p_data || p_g)``
   (:func:`value_function`, :func:`jsd`), so ``V(D*, G) >= -log 4`` with
   equality exactly when ``p_g = p_data``.
3. The minimax generator loss ``log(1 - D(G(z)))`` saturates where the
   non-saturating loss ``-log D(G(z))`` does not
   (:func:`generator_loss_per_sample`, :func:`generator_loss_grad`,
   :func:`saturation_ratio`).
4. A generator sitting on one mode of a well separated mixture gets almost no
   gradient from the optimal discriminator towards the modes it misses
   (:func:`generator_shift_gradient`).

and one fact about gradient play in games in general: on the bilinear game
``min_x max_y x * y`` simultaneous gradient steps spiral away from the
equilibrium and alternating steps circle it (:func:`bilinear_game`).

:class:`ToyGAN` holds a small generator and discriminator built from
:mod:`npgan.layers` with explicit training steps, for the toy experiments
(``examples/toy_1d.py``, ``examples/mode_collapse.py``) and the empirical
tests.

Discriminators are passed as functions returning *logits*
``l(x) = log D(x) - log(1 - D(x))``, not probabilities: ``log D`` and
``log(1 - D)`` are then computed as ``log_sigmoid(l)`` and
``log_sigmoid(-l)``, which stay exact where ``D`` rounds to 0 or 1 in floating
point.

Accuracy of the integrals
-------------------------
Every expectation is an integral over a finite interval that covers both
densities to ``TAIL_Z`` standard deviations of every component (10 by
default). The probability mass outside carries less than ``2e-23`` per
component and side, so truncating the tails changes a JSD by less than
``1e-22`` and ``V(D*, G)`` by less than ``1e-22`` (the integrands are bounded
by the local mass there, times ``log 2`` or ``1/e``). Inside the interval,
:func:`integrate` uses composite 8-point Gauss-Legendre quadrature on panels
no wider than the narrowest standard deviation, and doubles the number of
panels until two successive results differ by at most ``atol`` (``1e-10`` by
default); it returns the finer result and that difference as its error
estimate. All of this runs in float64.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from npgan import layers, losses, optim

__all__ = [
    "TAIL_Z",
    "Gaussian",
    "GaussianMixture",
    "Integral",
    "integrate",
    "log_sigmoid",
    "sigmoid",
    "optimal_discriminator_logit",
    "optimal_discriminator",
    "value_function",
    "optimal_value",
    "jsd",
    "generator_loss_per_sample",
    "generator_loss_grad",
    "saturation_ratio",
    "generator_shift_gradient",
    "bilinear_game",
    "bilinear_invariant",
    "ToyGAN",
]

#: Half-width, in standard deviations of each component, of the interval on
#: which expectations are integrated.
TAIL_Z = 10.0

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(8)
_LOG2 = math.log(2.0)


# ---------------------------------------------------------------------------
# Densities
# ---------------------------------------------------------------------------


def _check_finite_scalar(value, name):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


class GaussianMixture:
    """A mixture of 1D Gaussians with closed-form log-density.

    Parameters
    ----------
    means : array_like, shape (K,)
        Component means.
    stds : array_like, shape (K,)
        Component standard deviations, all > 0.
    weights : array_like, shape (K,), optional
        Mixture weights, non-negative with a positive sum; normalised to sum
        to 1. Default: equal weights.
    """

    def __init__(self, means, stds, weights=None):
        means = np.atleast_1d(np.asarray(means, dtype=np.float64))
        stds = np.atleast_1d(np.asarray(stds, dtype=np.float64))
        if means.ndim != 1 or means.shape != stds.shape or means.size == 0:
            raise ValueError(
                f"means and stds must be non-empty 1D arrays of equal length, "
                f"got shapes {means.shape} and {stds.shape}"
            )
        if not (np.all(np.isfinite(means)) and np.all(np.isfinite(stds))):
            raise ValueError("means and stds must be finite")
        if np.any(stds <= 0):
            raise ValueError(f"stds must be > 0, got {stds.tolist()}")
        if weights is None:
            weights = np.full(means.shape, 1.0 / means.size)
        weights = np.atleast_1d(np.asarray(weights, dtype=np.float64))
        if weights.shape != means.shape:
            raise ValueError(
                f"weights must have shape {means.shape}, got {weights.shape}"
            )
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError(f"weights must be finite and >= 0, got {weights}")
        if weights.sum() <= 0:
            raise ValueError("weights must have a positive sum")
        self.means = means
        self.stds = stds
        self.weights = weights / weights.sum()

    def __repr__(self):
        return (
            f"{type(self).__name__}(means={self.means.tolist()}, "
            f"stds={self.stds.tolist()}, weights={self.weights.tolist()})"
        )

    def _component_logpdf(self, x):
        # (M, K): log N(x_m; mu_k, sigma_k^2) + log w_k
        z = (x[:, None] - self.means) / self.stds
        with np.errstate(divide="ignore"):
            log_w = np.log(self.weights)
        return -0.5 * z * z - np.log(self.stds) - 0.5 * math.log(2.0 * math.pi) + log_w

    def logpdf(self, x):
        """Log-density at ``x``.

        Parameters
        ----------
        x : array_like, shape (M,) or scalar

        Returns
        -------
        ndarray, float64, same shape as ``x``
        """
        x = np.asarray(x, dtype=np.float64)
        flat = x.reshape(-1)
        comp = self._component_logpdf(flat)
        top = comp.max(axis=1, keepdims=True)
        out = top[:, 0] + np.log(np.exp(comp - top).sum(axis=1))
        return out.reshape(x.shape)

    def pdf(self, x):
        """Density at ``x`` (float64, same shape as ``x``)."""
        return np.exp(self.logpdf(x))

    def score(self, x):
        """Derivative of the log-density, ``d log p(x) / dx``.

        Parameters
        ----------
        x : array_like, shape (M,) or scalar

        Returns
        -------
        ndarray, float64, same shape as ``x``
        """
        x = np.asarray(x, dtype=np.float64)
        flat = x.reshape(-1)
        comp = self._component_logpdf(flat)
        resp = np.exp(comp - comp.max(axis=1, keepdims=True))
        resp /= resp.sum(axis=1, keepdims=True)
        comp_score = -(flat[:, None] - self.means) / self.stds**2
        return (resp * comp_score).sum(axis=1).reshape(x.shape)

    def sample(self, n, *, rng, dtype=np.float64):
        """Draw ``n`` samples.

        Parameters
        ----------
        n : int
        rng : numpy.random.Generator
        dtype : numpy dtype, default float64

        Returns
        -------
        ndarray, shape (n,)
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng)}")
        k = rng.choice(self.means.size, size=int(n), p=self.weights)
        x = self.means[k] + self.stds[k] * rng.standard_normal(int(n))
        return x.astype(dtype, copy=False)

    def interval(self):
        """Interval holding all but < 2e-23 of the mass per component and side.

        Returns
        -------
        (lo, hi) : tuple of float
        """
        keep = self.weights > 0
        lo = np.min(self.means[keep] - TAIL_Z * self.stds[keep])
        hi = np.max(self.means[keep] + TAIL_Z * self.stds[keep])
        return float(lo), float(hi)

    @property
    def min_std(self):
        """Smallest component standard deviation with non-zero weight."""
        return float(np.min(self.stds[self.weights > 0]))


class Gaussian(GaussianMixture):
    """A 1D Gaussian ``N(mean, std**2)`` (a one-component mixture).

    Parameters
    ----------
    mean : float
    std : float, > 0
    """

    def __init__(self, mean, std):
        mean = _check_finite_scalar(mean, "mean")
        std = _check_finite_scalar(std, "std")
        super().__init__([mean], [std])

    @property
    def mean(self):
        """The mean, a float."""
        return float(self.means[0])

    @property
    def std(self):
        """The standard deviation, a float."""
        return float(self.stds[0])

    def __repr__(self):
        return f"Gaussian(mean={self.mean}, std={self.std})"


# ---------------------------------------------------------------------------
# Quadrature
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Integral:
    """Result of :func:`integrate`.

    Attributes
    ----------
    value : float
        The integral on the finest grid used.
    error : float
        ``|value - value on half as many panels|``, the error estimate.
    panels : int
        Number of panels of the finest grid.
    """

    value: float
    error: float
    panels: int


def _gauss_legendre(f, lo, hi, panels):
    edges = np.linspace(lo, hi, panels + 1)
    half = 0.5 * (edges[1:] - edges[:-1])
    mid = 0.5 * (edges[1:] + edges[:-1])
    x = (mid[:, None] + half[:, None] * _GL_NODES).reshape(-1)
    fx = np.asarray(f(x), dtype=np.float64).reshape(panels, _GL_NODES.size)
    return float(np.sum(half * (fx @ _GL_WEIGHTS)))


def integrate(f, lo, hi, *, scale=None, atol=1e-10, max_panels=1 << 17):
    """Integrate a smooth vectorised function on ``[lo, hi]``.

    Composite 8-point Gauss-Legendre quadrature. The first grid has panels no
    wider than ``scale`` (at least 64 panels); the number of panels doubles
    until two successive results differ by at most ``atol``.

    Parameters
    ----------
    f : callable
        Maps an array ``x`` of shape (M,) to ``f(x)`` of shape (M,).
    lo, hi : float
        Finite limits, ``lo < hi``.
    scale : float, optional
        Length on which ``f`` changes (for a density: its narrowest standard
        deviation). Default: ``(hi - lo) / 64``.
    atol : float, default 1e-10
        Absolute accuracy asked for.
    max_panels : int, default 131072
        Stop doubling here; a ``RuntimeWarning`` says the accuracy was not
        reached.

    Returns
    -------
    Integral
    """
    lo = _check_finite_scalar(lo, "lo")
    hi = _check_finite_scalar(hi, "hi")
    if not lo < hi:
        raise ValueError(f"integration limits must satisfy lo < hi, got {lo}, {hi}")
    if atol <= 0:
        raise ValueError(f"atol must be > 0, got {atol}")
    if scale is None:
        scale = (hi - lo) / 64
    panels = max(64, int(math.ceil((hi - lo) / scale)))
    coarse = _gauss_legendre(f, lo, hi, panels)
    while True:
        panels *= 2
        fine = _gauss_legendre(f, lo, hi, panels)
        err = abs(fine - coarse)
        if err <= atol or not math.isfinite(err):
            return Integral(fine, err, panels)
        if panels >= max_panels:
            warnings.warn(
                f"integrate: error estimate {err:.3g} above atol={atol:.3g} "
                f"at {panels} panels",
                RuntimeWarning,
                stacklevel=2,
            )
            return Integral(fine, err, panels)
        coarse = fine


def _joint_interval(p, q):
    lo_p, hi_p = p.interval()
    lo_q, hi_q = q.interval()
    return min(lo_p, lo_q), max(hi_p, hi_q), min(p.min_std, q.min_std)


def _check_density(p, name):
    if not isinstance(p, GaussianMixture):
        raise TypeError(
            f"{name} must be a Gaussian or GaussianMixture, got {type(p).__name__}"
        )


# ---------------------------------------------------------------------------
# Claims 1 and 2: optimal discriminator, value function, JSD
# ---------------------------------------------------------------------------


def log_sigmoid(x):
    """``log(1 / (1 + exp(-x)))``, exact for any finite ``x``; dtype kept."""
    x = np.asarray(x)
    return -np.logaddexp(np.zeros((), dtype=x.dtype), -x)


def sigmoid(x):
    """``1 / (1 + exp(-x))`` without overflow; dtype kept."""
    x = np.asarray(x)
    return np.exp(log_sigmoid(x))


def optimal_discriminator_logit(p_data, p_g, x):
    """Logit of the optimal discriminator, ``log p_data(x) - log p_g(x)``.

    Parameters
    ----------
    p_data, p_g : GaussianMixture
    x : array_like, shape (M,)

    Returns
    -------
    ndarray, float64, shape (M,)
    """
    _check_density(p_data, "p_data")
    _check_density(p_g, "p_g")
    return p_data.logpdf(x) - p_g.logpdf(x)


def optimal_discriminator(p_data, p_g, x):
    """The optimal discriminator ``D*(x) = p_data(x) / (p_data(x) + p_g(x))``.

    Parameters
    ----------
    p_data, p_g : GaussianMixture
    x : array_like, shape (M,)

    Returns
    -------
    ndarray, float64, shape (M,), values in [0, 1]
    """
    return sigmoid(optimal_discriminator_logit(p_data, p_g, x))


def value_function(d_logit, p_data, p_g, *, atol=1e-10):
    """The GAN value ``V(D, G)`` for a discriminator given by its logit.

    ``V = E_{p_data}[log D] + E_{p_g}[log(1 - D)]`` with
    ``log D = log_sigmoid(l)`` and ``log(1 - D) = log_sigmoid(-l)``.

    Parameters
    ----------
    d_logit : callable
        Maps ``x`` of shape (M,) (float64) to logits of shape (M,).
    p_data, p_g : GaussianMixture
    atol : float, default 1e-10
        Quadrature accuracy (see the module docstring). The tails cut off
        change the result by at most ``4e-23 * (L + log 2)`` per component,
        where ``L`` bounds ``|d_logit|`` there.

    Returns
    -------
    float
    """
    _check_density(p_data, "p_data")
    _check_density(p_g, "p_g")
    lo, hi, scale = _joint_interval(p_data, p_g)

    def integrand(x):
        logit = np.asarray(d_logit(x), dtype=np.float64).reshape(x.shape)
        return p_data.pdf(x) * log_sigmoid(logit) + p_g.pdf(x) * log_sigmoid(-logit)

    return integrate(integrand, lo, hi, scale=scale, atol=atol).value


def optimal_value(p_data, p_g, *, atol=1e-10):
    """``V(D*, G)``: :func:`value_function` at the optimal discriminator."""
    return value_function(
        lambda x: optimal_discriminator_logit(p_data, p_g, x),
        p_data,
        p_g,
        atol=atol,
    )


def jsd(p, q, *, atol=1e-10):
    """Jensen-Shannon divergence ``JSD(p || q)`` in nats.

    ``JSD = KL(p || m) / 2 + KL(q || m) / 2`` with ``m = (p + q) / 2``, each
    log-ratio computed from log-densities, so it lies in ``[0, log 2]``.

    Parameters
    ----------
    p, q : GaussianMixture
    atol : float, default 1e-10
        Quadrature accuracy; the truncated tails add less than ``1e-22``.

    Returns
    -------
    float
    """
    _check_density(p, "p")
    _check_density(q, "q")
    lo, hi, scale = _joint_interval(p, q)

    def integrand(x):
        lp = p.logpdf(x)
        lq = q.logpdf(x)
        log_m = np.logaddexp(lp, lq) - _LOG2
        return 0.5 * (np.exp(lp) * (lp - log_m) + np.exp(lq) * (lq - log_m))

    return integrate(integrand, lo, hi, scale=scale, atol=atol).value


# ---------------------------------------------------------------------------
# Claim 3: saturation of the minimax generator loss
# ---------------------------------------------------------------------------

_KINDS = ("minimax", "non-saturating")


def _check_kind(kind):
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")


def generator_loss_per_sample(logits, kind):
    """Per-sample generator loss from discriminator logits on fakes.

    ``minimax``: ``log(1 - D) = log_sigmoid(-l)``;
    ``non-saturating``: ``-log D = -log_sigmoid(l)``. No reduction.

    Parameters
    ----------
    logits : array_like, shape (N,)
        Discriminator logits ``l`` on generated samples, ``D = sigmoid(l)``.
    kind : {"minimax", "non-saturating"}

    Returns
    -------
    ndarray, shape (N,), dtype of ``logits``
    """
    _check_kind(kind)
    logits = np.asarray(logits)
    if kind == "minimax":
        return log_sigmoid(-logits)
    return -log_sigmoid(logits)


def generator_loss_grad(logits, kind):
    """Closed-form derivative of :func:`generator_loss_per_sample`.

    ``minimax``: ``d log(1 - D) / dl = -D``;
    ``non-saturating``: ``d (-log D) / dl = -(1 - D)``, with ``1 - D``
    computed as ``sigmoid(-l)`` so it keeps full relative precision. No
    reduction.

    Parameters
    ----------
    logits : array_like, shape (N,)
    kind : {"minimax", "non-saturating"}

    Returns
    -------
    ndarray, shape (N,), dtype of ``logits``
    """
    _check_kind(kind)
    logits = np.asarray(logits)
    if kind == "minimax":
        return -sigmoid(logits)
    return -sigmoid(-logits)


def saturation_ratio(logits):
    """``D / (1 - D) = exp(l)``: minimax over non-saturating gradient.

    Parameters
    ----------
    logits : array_like, shape (N,)

    Returns
    -------
    ndarray, shape (N,), dtype of ``logits``
    """
    return np.exp(np.asarray(logits))


# ---------------------------------------------------------------------------
# Claim 4: a generator on one mode gets no pull towards the others
# ---------------------------------------------------------------------------


def generator_shift_gradient(p_data, p_g, kind="non-saturating", *, atol=1e-12):
    """Gradient of the generator loss w.r.t. a shift of all generated samples.

    For a generator ``G(z) = g(z) + s`` facing the optimal discriminator of
    its current distribution (held fixed), this is
    ``d/ds E_{x ~ p_g}[loss(l*(x + s))]`` at ``s = 0``, i.e.
    ``E_{p_g}[loss'(l*(x)) * (score_data(x) - score_g(x))]`` with
    ``l* = log p_data - log p_g``. A gradient step moves ``s`` by ``-lr``
    times this value.

    Parameters
    ----------
    p_data, p_g : GaussianMixture
    kind : {"minimax", "non-saturating"}
    atol : float, default 1e-12

    Returns
    -------
    float
    """
    _check_kind(kind)
    _check_density(p_data, "p_data")
    _check_density(p_g, "p_g")
    lo, hi, scale = _joint_interval(p_data, p_g)

    def integrand(x):
        logit = optimal_discriminator_logit(p_data, p_g, x)
        dlogit_dx = p_data.score(x) - p_g.score(x)
        return p_g.pdf(x) * generator_loss_grad(logit, kind) * dlogit_dx

    return integrate(integrand, lo, hi, scale=scale, atol=atol).value


# ---------------------------------------------------------------------------
# Claim 5: gradient play on the bilinear game min_x max_y x * y
# ---------------------------------------------------------------------------


def bilinear_game(x0, y0, *, lr, steps, mode="simultaneous"):
    """Gradient descent on ``x`` and ascent on ``y`` for ``f(x, y) = x * y``.

    The unique equilibrium is ``(0, 0)``. ``simultaneous``:
    ``x' = x - lr * y``, ``y' = y + lr * x``, which multiplies
    ``x**2 + y**2`` by exactly ``1 + lr**2`` each step. ``alternating``:
    ``x' = x - lr * y``, ``y' = y + lr * x'``, which keeps
    :func:`bilinear_invariant` constant, so for ``0 < lr < 2`` the iterates
    stay on an ellipse around ``(0, 0)``.

    Parameters
    ----------
    x0, y0 : float
        Start point.
    lr : float, > 0
    steps : int, >= 0
    mode : {"simultaneous", "alternating"}

    Returns
    -------
    xs, ys : ndarray, float64, shape (steps + 1,)
        The iterates, starting with ``(x0, y0)``.
    """
    x = _check_finite_scalar(x0, "x0")
    y = _check_finite_scalar(y0, "y0")
    lr = _check_finite_scalar(lr, "lr")
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps}")
    if mode not in ("simultaneous", "alternating"):
        raise ValueError(f"mode must be 'simultaneous' or 'alternating', got {mode!r}")
    xs = np.empty(int(steps) + 1)
    ys = np.empty(int(steps) + 1)
    xs[0], ys[0] = x, y
    for t in range(1, int(steps) + 1):
        grad_x = y  # d(x*y)/dx, descended by the minimising player
        if mode == "simultaneous":
            grad_y = x  # d(x*y)/dy at the old x, ascended by the maximiser
            x = x - lr * grad_x
        else:
            x = x - lr * grad_x
            grad_y = x  # the maximiser sees the x just played
        y = y + lr * grad_y
        xs[t], ys[t] = x, y
    return xs, ys


def bilinear_invariant(x, y, lr):
    """``x**2 + y**2 - lr * x * y``, conserved by alternating play.

    It lies between ``(1 - lr / 2)`` and ``(1 + lr / 2)`` times
    ``x**2 + y**2``, so for ``lr < 2`` its level sets are ellipses around
    ``(0, 0)`` and the distance to the equilibrium stays within a factor
    ``sqrt((1 + lr/2) / (1 - lr/2))`` of where it started.

    Parameters
    ----------
    x, y : array_like, same shape
    lr : float

    Returns
    -------
    ndarray or float
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return x * x + y * y - lr * x * y


# ---------------------------------------------------------------------------
# A tiny explicit GAN for the toy experiments (1D and 2D)
# ---------------------------------------------------------------------------


class ToyGAN:
    """A small generator and discriminator MLP with explicit training steps.

    Used by the toy examples and the empirical tests, so that every step of
    the game is visible: :meth:`d_step` is one Adam step of the discriminator
    on binary cross-entropy, :meth:`g_step` one Adam step of the generator on
    :func:`npgan.losses.generator_loss` backpropagated through the frozen
    discriminator. Everything runs in float32.

    Parameters
    ----------
    data_dim : int
        Dimension ``D_x`` of a sample.
    noise_dim : int
        Dimension ``D_z`` of the generator's Gaussian input.
    rng : numpy.random.Generator
        Used for the initial weights and for every noise draw.
    g_hidden, d_hidden : sequence of int
        Hidden widths of the two MLPs (LeakyReLU(0.2) between layers).
    lr_g, lr_d : float
        Adam learning rates (betas (0.5, 0.999)).
    pack : int, default 1
        PacGAN packing degree: the discriminator sees ``pack`` samples of the
        same kind concatenated, shape (N / pack, pack * D_x). Batch sizes must
        be multiples of ``pack``.
    """

    def __init__(
        self,
        *,
        data_dim,
        noise_dim,
        rng,
        g_hidden=(32, 32),
        d_hidden=(32, 32),
        lr_g=1e-3,
        lr_d=1e-3,
        pack=1,
    ):
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng)}")
        if int(pack) != pack or pack < 1:
            raise ValueError(f"pack must be an integer >= 1, got {pack}")
        self.rng = rng
        self.data_dim = int(data_dim)
        self.noise_dim = int(noise_dim)
        self.pack = int(pack)
        self.G = layers.mlp([self.noise_dim, *g_hidden, self.data_dim], rng=rng)
        self.D = layers.mlp([self.data_dim * self.pack, *d_hidden, 1], rng=rng)
        self.opt_g = optim.Adam(self.G.params, lr=lr_g, betas=(0.5, 0.999))
        self.opt_d = optim.Adam(self.D.params, lr=lr_d, betas=(0.5, 0.999))

    def _packed(self, x):
        n = x.shape[0]
        if n % self.pack:
            raise ValueError(f"batch size {n} is not a multiple of pack={self.pack}")
        return x.reshape(n // self.pack, self.pack * self.data_dim)

    def noise(self, n):
        """Draw generator input, float32 of shape (n, D_z)."""
        return self.rng.standard_normal((n, self.noise_dim), dtype=np.float32)

    def generate(self, n):
        """Draw ``n`` generated samples, float32 of shape (n, D_x)."""
        return self.G.forward(self.noise(n))

    def d_logit(self, x):
        """Discriminator logits, shape (N / pack,), for samples ``x`` (N, D_x)."""
        x = np.asarray(x, dtype=np.float32).reshape(-1, self.data_dim)
        return self.D.forward(self._packed(x))[:, 0]

    def d_step(self, real, fake=None):
        """One discriminator step on ``real`` against ``fake`` (or fresh fakes).

        The loss is binary cross-entropy on logits, mean over the real and
        fake packs together (real labelled 1, fake 0).

        Parameters
        ----------
        real : ndarray, shape (N, D_x)
        fake : ndarray, shape (M, D_x), optional
            Default: ``N`` fresh generated samples.

        Returns
        -------
        float
            The loss before the step.
        """
        real = np.asarray(real, dtype=np.float32).reshape(-1, self.data_dim)
        if fake is None:
            fake = self.generate(real.shape[0])
        fake = np.asarray(fake, dtype=np.float32).reshape(-1, self.data_dim)
        x = np.concatenate([self._packed(real), self._packed(fake)])
        n_real = real.shape[0] // self.pack
        targets = np.zeros(x.shape[0], dtype=np.float32)
        targets[:n_real] = 1.0
        logits = self.D.forward(x)
        value, grad = losses.bce_with_logits(logits, targets)
        self.D.backward(grad, param_grads=True)
        self.opt_d.step(self.D.grads)
        return value

    def g_step(self, n, kind="non-saturating"):
        """One generator step on ``n`` fresh samples.

        Parameters
        ----------
        n : int
        kind : {"non-saturating", "minimax"}

        Returns
        -------
        loss : float
            Generator loss (mean over packs) before the step.
        d_fake : float
            Mean ``D(G(z))`` over the packs, before the step.
        grad_norm : float
            Euclidean norm of the generator's parameter gradient.
        """
        fake = self.G.forward(self.noise(n))
        logits = self.D.forward(self._packed(fake))
        value, grad = losses.generator_loss(logits, kind)
        grad_x = self.D.backward(grad, param_grads=False)
        self.G.backward(grad_x.reshape(fake.shape), param_grads=True)
        norm = math.sqrt(sum(float(np.sum(g * g)) for g in self.G.grads.values()))
        self.opt_g.step(self.G.grads)
        return value, float(np.mean(sigmoid(logits))), norm
