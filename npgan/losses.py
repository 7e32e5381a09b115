"""Losses, each returning its value and its gradient.

Every function returns ``(value, grad)``: ``value`` is a Python float, the
**mean** over the batch, and ``grad`` is d(value)/d(input), with the shape
and dtype of the input. Because the reduction is the mean, every gradient
carries a factor ``1 / N``.

Shapes: ``N`` is the batch size, ``C`` the number of classes. Binary losses
take predictions of shape (N,) or (N, 1) and targets of shape (N,) or the
predictions' shape; they are compared entry by entry, never broadcast against
each other (an (N, 1) column against an (N,) row would silently make an
(N, N) matrix).

Why the GAN losses work on logits: the discriminator ends in a linear layer,
and ``log(sigmoid(l))`` computed as ``-softplus(-l)`` stays finite and
accurate for any finite logit, where ``log`` of a rounded sigmoid would give
``-inf`` once the sigmoid rounds to 0 or 1.
"""

import numpy as np

from npgan import functional as F

__all__ = [
    "bce",
    "bce_with_logits",
    "generator_loss",
    "softmax_cross_entropy",
    "GENERATOR_LOSSES",
]

GENERATOR_LOSSES = ("non-saturating", "minimax")


def _check_predictions(name, x, what):
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        kind = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"{name}: {what} must be a floating-point ndarray, got {kind}")
    if x.ndim == 2 and x.shape[1] == 1:
        flat = x.reshape(-1)
    elif x.ndim == 1:
        flat = x
    else:
        raise ValueError(
            f"{name}: {what} must have shape (N,) or (N, 1), got {x.shape}"
        )
    if flat.size == 0:
        raise ValueError(f"{name}: {what} is empty; expected at least one sample")
    if not np.all(np.isfinite(flat)):
        raise ValueError(f"{name}: {what} contains NaN or infinity")
    return flat


def _check_targets(name, targets, pred, flat):
    t = np.asarray(targets)
    if t.shape != pred.shape and t.shape != flat.shape:
        raise ValueError(
            f"{name}: targets must have shape {flat.shape} or {pred.shape}, "
            f"got {t.shape}"
        )
    t = t.reshape(-1).astype(flat.dtype, copy=False)
    if not np.all((t >= 0) & (t <= 1)):
        raise ValueError(f"{name}: targets must lie in [0, 1]")
    return t


def bce(probs, targets, *, eps=1e-7):
    """Binary cross-entropy on probabilities, mean over the batch.

    ``value = -mean(t log p + (1 - t) log(1 - p))``.

    Parameters
    ----------
    probs : ndarray of float, shape (N,) or (N, 1), values in [0, 1]
    targets : array_like, shape (N,) or the shape of ``probs``, values in [0, 1]
    eps : float
        ``p`` is clamped to ``[eps, 1 - eps]`` before the logarithms so that a
        probability of exactly 0 or 1 gives a large finite loss instead of
        infinity. The gradient is the formula's gradient at the clamped ``p``.
        Prefer :func:`bce_with_logits`, which needs no clamp.

    Returns
    -------
    value : float
    grad : ndarray, shape and dtype of ``probs``
        ``(p - t) / (p (1 - p)) / N``.
    """
    flat = _check_predictions("bce", probs, "probs")
    if np.any((flat < 0) | (flat > 1)):
        raise ValueError(
            "bce: probs must lie in [0, 1]; pass logits to bce_with_logits"
        )
    t = _check_targets("bce", targets, probs, flat)
    n = flat.shape[0]
    p = np.clip(flat, eps, 1 - eps)
    value = -np.mean(t * np.log(p) + (1 - t) * np.log1p(-p))
    grad = (p - t) / (p * (1 - p)) / n
    return float(value), grad.astype(probs.dtype, copy=False).reshape(probs.shape)


def bce_with_logits(logits, targets):
    """Binary cross-entropy on logits, mean over the batch.

    With ``p = sigmoid(l)``, ``-[t log p + (1 - t) log(1 - p)]`` simplifies to
    ``softplus(l) - t l``, finite for every finite logit.

    Parameters
    ----------
    logits : ndarray of float, shape (N,) or (N, 1)
    targets : array_like, shape (N,) or the shape of ``logits``, values in [0, 1]

    Returns
    -------
    value : float
    grad : ndarray, shape and dtype of ``logits``
        ``(sigmoid(l) - t) / N``: the derivative of softplus is the sigmoid, so
        the sigmoid's own derivative cancels against the log's and only the
        prediction error remains.
    """
    flat = _check_predictions("bce_with_logits", logits, "logits")
    t = _check_targets("bce_with_logits", targets, logits, flat)
    n = flat.shape[0]
    value = np.mean(F.softplus(flat) - t * flat)
    grad = (F.sigmoid(flat) - t) / flat.dtype.type(n)
    return float(value), grad.reshape(logits.shape)


def generator_loss(logits, kind="non-saturating"):
    """Generator loss of Goodfellow et al. (2014) from discriminator logits.

    With ``D = sigmoid(l)`` the discriminator's probability that a fake is
    real, mean over the batch:

    - ``"minimax"``: ``mean(log(1 - D)) = mean(-softplus(l))``, the term of the
      value function the generator minimises. Its gradient per logit is
      ``-D / N``: when the discriminator confidently rejects fakes, D is near
      0 and so is the gradient (saturation).
    - ``"non-saturating"``: ``mean(-log D) = mean(softplus(-l))``. Same fixed
      point, gradient ``-(1 - D) / N``, which is largest exactly when the
      discriminator wins. This is why it is the default.

    Parameters
    ----------
    logits : ndarray of float, shape (N,) or (N, 1)
    kind : {"non-saturating", "minimax"}

    Returns
    -------
    value : float
    grad : ndarray, shape and dtype of ``logits``
    """
    flat = _check_predictions("generator_loss", logits, "logits")
    n = flat.dtype.type(flat.shape[0])
    if kind == "minimax":
        value = -np.mean(F.softplus(flat))
        grad = -F.sigmoid(flat) / n
    elif kind == "non-saturating":
        value = np.mean(F.softplus(-flat))
        grad = (
            -F.sigmoid(-flat) / n
        )  # 1 - sigmoid(l) == sigmoid(-l), without cancellation
    else:
        raise ValueError(
            f"generator_loss: kind must be one of {GENERATOR_LOSSES}, got {kind!r}"
        )
    return float(value), grad.reshape(logits.shape)


def softmax_cross_entropy(logits, labels):
    """Softmax cross-entropy against integer class labels, mean over the batch.

    ``value = mean(logsumexp(l_i) - l_i[y_i])``, computed after subtracting
    each row's maximum so that no exponential overflows.

    Parameters
    ----------
    logits : ndarray of float, shape (N, C)
    labels : array_like of int, shape (N,), values in [0, C)

    Returns
    -------
    value : float
    grad : ndarray, shape (N, C), dtype of ``logits``
        ``(softmax(l) - onehot(y)) / N``.
    """
    if not isinstance(logits, np.ndarray) or not np.issubdtype(
        logits.dtype, np.floating
    ):
        raise TypeError(
            "softmax_cross_entropy: logits must be a floating-point ndarray"
        )
    if logits.ndim != 2 or logits.shape[0] == 0:
        raise ValueError(
            f"softmax_cross_entropy: logits must have shape (N, C), got {logits.shape}"
        )
    if not np.all(np.isfinite(logits)):
        raise ValueError("softmax_cross_entropy: logits contain NaN or infinity")
    n, c = logits.shape
    y = np.asarray(labels)
    if y.shape != (n,):
        raise ValueError(
            f"softmax_cross_entropy: labels must have shape ({n},), got {y.shape}"
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(
            f"softmax_cross_entropy: labels must be integers, got {y.dtype}"
        )
    if np.any((y < 0) | (y >= c)):
        raise ValueError(
            f"softmax_cross_entropy: labels must lie in [0, {c}), "
            f"got {y.min()}..{y.max()}"
        )
    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, C), each row's max is 0
    with np.errstate(under="ignore"):
        e = np.exp(shifted)  # (N, C), values in (0, 1]
    sum_e = e.sum(axis=1, keepdims=True)  # (N, 1), at least 1
    rows = np.arange(n)
    value = np.mean(np.log(sum_e[:, 0]) - shifted[rows, y])
    grad = e / sum_e  # (N, C) softmax
    grad[rows, y] -= 1
    grad /= logits.dtype.type(n)
    return float(value), grad
