"""Check hand-written gradients against central finite differences.

For a layer with output ``y = f(x)``, a random upstream gradient ``G`` of the
output's shape turns the layer into the scalar ``s = sum(G * f(x))``. The
analytic gradients of ``s`` are what ``backward(G)`` returns (for ``x``) and
writes into ``grads`` (for each parameter). The numeric gradient of each entry
``a`` is the five-point central difference
``(8 [s(a + h) - s(a - h)] - [s(a + 2h) - s(a - 2h)]) / (12 h)``, whose error is
of order ``h^4`` rather than the ``h^2`` of the two-point form: with ``h``
near 1e-4 it leaves rounding, not truncation, as the limit. For a loss ``(value, grad) =
loss(x, ...)`` the scalar is ``value`` itself times a random number.

Each entry is compared by the relative error ``|a - n| / max(|a| + |n|, tiny)``,
where ``a`` is analytic and ``n`` numeric; ``tiny`` keeps entries whose true
gradient is zero (or underflows) from dividing rounding noise by zero. By
default ``tiny`` follows from the check itself: each evaluation of ``s`` is
rounded to a few ``eps |s|`` (``eps`` = 2.2e-16; for a layer, ``|s|`` is
taken as ``sum |G * f(x)|``, since the terms may cancel), so a difference
quotient is uncertain by about ``8 eps |s| / h``, and an entry smaller than that
uncertainty divided by ``RESOLVE_TO`` (1e-6) cannot be measured to a relative
error of 1e-6 at all. Such entries are held to the absolute resolution
instead. With ``|s|`` near 10 and ``h = 1e-4`` the floor is about 2e-4, and an
entry under it must agree to about 2e-10.

Everything runs in float64: central differences in float32 carry errors near
``1e-3`` and would hide real mistakes. float32 arrays are refused, not
silently compared; build the layer with ``dtype=np.float64`` to check it.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["GradcheckReport", "check_layer", "check_loss"]

#: Relative accuracy that the automatic floor is chosen for: entries too small
#: for central differences to measure to this accuracy are compared in
#: absolute terms, at the differences' own resolution.
RESOLVE_TO = 1e-6


@dataclass(frozen=True)
class GradcheckReport:
    """Outcome of a gradient check.

    Attributes
    ----------
    max_rel_error : float
        Largest relative error over every checked entry.
    worst : str
        Which array holds that entry (``"input"`` or a parameter name).
    index : tuple of int
        Its index in that array.
    analytic, numeric : float
        The two gradients at that entry.
    checked : int
        How many entries were compared.
    tiny : float
        The floor of the denominator that was used.
    """

    max_rel_error: float
    worst: str
    index: tuple
    analytic: float
    numeric: float
    checked: int
    tiny: float

    def ok(self, tol=1e-6):
        """True when every entry's relative error is at most ``tol``."""
        return self.max_rel_error <= tol

    def __str__(self):
        return (
            f"max relative error {self.max_rel_error:.3e} over {self.checked} entries; "
            f"worst at {self.worst}{list(self.index)}: analytic {self.analytic:.10g}, "
            f"numeric {self.numeric:.10g}"
        )


def _require_float64(what, a):
    if not isinstance(a, np.ndarray) or a.dtype != np.float64:
        kind = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
        raise TypeError(f"gradcheck: {what} must be a float64 ndarray, got {kind}")


def _numeric_gradient(scalar, a, h):
    """Central differences of ``scalar()`` with respect to each entry of ``a``.

    ``scalar()`` returns the value and the magnitude its rounding error scales
    with. Returns the numeric gradient and the largest magnitude seen.

    ``a`` is perturbed in place and restored exactly after each entry.
    """
    num = np.zeros_like(a)
    flat = a.reshape(-1)  # a view: writing to it perturbs ``a``
    out = num.reshape(-1)
    largest = 0.0
    for i in range(flat.size):
        orig = flat[i]
        values = []
        for step in (h, -h, 2 * h, -2 * h):
            flat[i] = orig + step
            value, magnitude = scalar()
            values.append(value)
            largest = max(largest, magnitude)
        flat[i] = orig
        plus, minus, plus2, minus2 = values
        # Five-point central stencil: the h^2 error terms of the two central
        # differences cancel, leaving an error of order h^4.
        out[i] = (8 * (plus - minus) - (plus2 - minus2)) / (12 * h)
    return num, largest


def _floor(tiny, largest, h):
    if tiny is not None:
        return tiny
    # Rounding makes each evaluation of the scalar uncertain by a few units in
    # the last place of the magnitude of its terms, so a difference quotient
    # cannot resolve gradients much below eps * magnitude / h. Entries under
    # RESOLVE_TO of that are compared in absolute terms instead.
    resolution = 8 * np.finfo(np.float64).eps * max(largest, 1.0) / h
    return resolution / RESOLVE_TO


def _compare(pairs, tiny):
    worst = (-1.0, "", (), 0.0, 0.0)
    checked = 0
    for name, analytic, numeric in pairs:
        scale = np.maximum(np.abs(analytic) + np.abs(numeric), tiny)
        err = np.abs(analytic - numeric) / scale
        checked += err.size
        if err.size and err.max() > worst[0]:
            idx = np.unravel_index(int(np.argmax(err)), err.shape)
            worst = (
                float(err[idx]),
                name,
                tuple(int(i) for i in idx),
                float(analytic[idx]),
                float(numeric[idx]),
            )
    return GradcheckReport(*worst, checked=checked, tiny=float(tiny))


def check_layer(layer, x, *, rng, h=1e-4, tiny=None):
    """Compare a layer's ``backward`` with central differences.

    Works for any object following the layer contract of :mod:`npgan.layers`,
    including :class:`~npgan.layers.Sequential`.

    Parameters
    ----------
    layer : Layer
        Its parameters must be float64.
    x : ndarray of float64, shape (N, D_in)
    rng : numpy.random.Generator
        Draws the upstream gradient, standard normal of the output's shape.
    h : float
        Finite-difference step.
    tiny : float or None
        Floor of the relative error's denominator. None derives it from the
        rounding resolution of the differences (see the module docstring).

    Returns
    -------
    GradcheckReport
    """
    _require_float64("input", x)
    for name, p in layer.params.items():
        _require_float64(f"parameter '{name}'", p)
    x = x.copy()
    upstream = rng.standard_normal(layer.forward(x).shape)

    def scalar():
        terms = upstream * layer.forward(x)
        # The terms may cancel: their absolute sum, not |s|, sets the rounding.
        return float(np.sum(terms)), float(np.sum(np.abs(terms)))

    layer.forward(x)
    grad_in = layer.backward(upstream).copy()
    analytic = {name: g.copy() for name, g in layer.grads.items()}

    numeric, largest = _numeric_gradient(scalar, x, h)
    pairs = [("input", grad_in, numeric)]
    for name, p in layer.params.items():
        numeric, seen = _numeric_gradient(scalar, p, h)
        largest = max(largest, seen)
        pairs.append((name, analytic[name], numeric))
    return _compare(pairs, _floor(tiny, largest, h))


def check_loss(loss_fn, x, *args, rng, h=1e-4, tiny=None, **kwargs):
    """Compare a loss's returned gradient with central differences.

    Parameters
    ----------
    loss_fn : callable
        ``loss_fn(x, *args, **kwargs) -> (value, grad)`` with ``grad`` of the
        shape of ``x``.
    x : ndarray of float64
        The input that the gradient is taken with respect to.
    *args, **kwargs
        Passed to ``loss_fn`` unchanged (targets, labels, the loss kind).
    rng : numpy.random.Generator
        Draws a standard normal multiplier of the value (the upstream gradient).
    h, tiny : float
        As in :func:`check_layer`.

    Returns
    -------
    GradcheckReport
    """
    _require_float64("input", x)
    x = x.copy()
    upstream = float(rng.standard_normal())

    def scalar():
        value = upstream * loss_fn(x, *args, **kwargs)[0]
        return value, abs(value)

    _, grad = loss_fn(x, *args, **kwargs)
    if grad.shape != x.shape:
        raise ValueError(
            f"gradcheck: loss gradient has shape {grad.shape}, input {x.shape}"
        )
    numeric, largest = _numeric_gradient(scalar, x, h)
    return _compare([("input", upstream * grad, numeric)], _floor(tiny, largest, h))
