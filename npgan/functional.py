"""Numerically stable element-wise functions shared by layers and losses.

Each function accepts an array of any shape and returns an array of the same
shape and floating dtype. They are finite for every finite input, including
inputs of magnitude 1000 and more, and raise no floating-point warning when
called under ``numpy.errstate(all="raise")``.

Underflow is the one floating-point event these functions expect: ``exp(-1000)``
is smaller than the smallest float and rounds to 0, which is the correct
answer here. Each function therefore ignores underflow locally, and only
underflow.
"""

import numpy as np


def _as_float_array(x, name):
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name}: expected a floating-point array, got dtype {x.dtype}")
    return x


def sigmoid(x):
    """Logistic function ``1 / (1 + exp(-x))``, stable for any finite ``x``.

    Parameters
    ----------
    x : ndarray of float, any shape

    Returns
    -------
    ndarray, same shape and dtype as ``x``, values in [0, 1].
    """
    x = _as_float_array(x, "sigmoid")
    with np.errstate(under="ignore"):
        # exp(-|x|) lies in (0, 1], so it can never overflow. For x >= 0 the
        # sigmoid is 1 / (1 + e); for x < 0 it is e / (1 + e), the same
        # function multiplied through by exp(x).
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype)


def softplus(x):
    """``log(1 + exp(x))``, stable for any finite ``x``.

    Written as ``max(x, 0) + log1p(exp(-|x|))``: the exponential never
    overflows and ``log1p`` keeps the small tail accurate.

    Parameters
    ----------
    x : ndarray of float, any shape

    Returns
    -------
    ndarray, same shape and dtype as ``x``, values >= 0.
    """
    x = _as_float_array(x, "softplus")
    with np.errstate(under="ignore"):
        return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def log_sigmoid(x):
    """``log(sigmoid(x)) = -softplus(-x)``, stable for any finite ``x``.

    Parameters
    ----------
    x : ndarray of float, any shape

    Returns
    -------
    ndarray, same shape and dtype as ``x``, values <= 0.
    """
    x = _as_float_array(x, "log_sigmoid")
    return -softplus(-x)
