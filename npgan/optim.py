"""Optimizers that update parameter arrays in place.

An optimizer is built on a dict of parameter arrays (``model.params``) and
owns its state: one step counter and, per parameter, moment arrays of the
parameter's shape and dtype. Two networks get two optimizers, so they never
share moments or step counts. ``step(grads)`` takes a dict with the same keys
and updates every parameter in place, keeping its dtype; float32 parameters
are updated in float32 arithmetic.

``state_dict()`` returns the full state as plain arrays and numbers (for
checkpoints); ``load_state_dict`` restores it exactly.
"""

import math

import numpy as np

__all__ = ["Adam", "SGD"]


class _Optimizer:
    def __init__(self, params, lr):
        if not isinstance(params, dict) or not params:
            raise ValueError(
                f"{type(self).__name__}: params must be a non-empty dict of arrays"
            )
        for name, p in params.items():
            if not isinstance(p, np.ndarray) or not np.issubdtype(p.dtype, np.floating):
                raise TypeError(
                    f"{type(self).__name__}: parameter '{name}' is not a float ndarray"
                )
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(
                f"{type(self).__name__}: lr must be a positive finite number, "
                f"got {lr!r}"
            )
        self.params = params
        self.lr = float(lr)
        self.t = 0
        # One scratch array per parameter, reused by every step so that a step
        # allocates nothing.
        self._tmp = {name: np.empty_like(p) for name, p in params.items()}

    def _check_grads(self, grads):
        if grads.keys() != self.params.keys():
            missing = sorted(set(self.params) - set(grads))
            extra = sorted(set(grads) - set(self.params))
            raise ValueError(
                f"{type(self).__name__}.step: missing grads {missing}, "
                f"unexpected {extra}"
            )

    def _state_arrays(self):
        raise NotImplementedError

    def state_dict(self):
        """Step counter and copies of every moment array.

        Keys: ``"t"`` and ``"<moment>.<param name>"``.
        """
        state = {"t": self.t}
        for prefix, arrays in self._state_arrays().items():
            for name, a in arrays.items():
                state[f"{prefix}.{name}"] = a.copy()
        return state

    def load_state_dict(self, state):
        """Restore a state from :meth:`state_dict`; shapes and dtypes must match."""
        expected = {"t"} | {
            f"{prefix}.{name}"
            for prefix, arrays in self._state_arrays().items()
            for name in arrays
        }
        if set(state) != expected:
            missing = sorted(expected - set(state))
            extra = sorted(set(state) - expected)
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: missing {missing}, "
                f"unexpected {extra}"
            )
        for prefix, arrays in self._state_arrays().items():
            for name, a in arrays.items():
                value = np.asarray(state[f"{prefix}.{name}"])
                if value.shape != a.shape or value.dtype != a.dtype:
                    raise ValueError(
                        f"{type(self).__name__}.load_state_dict: "
                        f"'{prefix}.{name}' expected "
                        f"{a.shape} {a.dtype}, got {value.shape} {value.dtype}"
                    )
        for prefix, arrays in self._state_arrays().items():
            for name, a in arrays.items():
                np.copyto(a, state[f"{prefix}.{name}"])
        self.t = int(state["t"])


class Adam(_Optimizer):
    """Adam (Kingma & Ba, 2015, Algorithm 1), with bias correction.

    At step ``t`` (counting from 1), for each parameter ``p`` with gradient ``g``::

        m = beta1 m + (1 - beta1) g
        v = beta2 v + (1 - beta2) g^2
        m_hat = m / (1 - beta1^t)
        v_hat = v / (1 - beta2^t)
        p = p - lr m_hat / (sqrt(v_hat) + eps)

    ``eps`` is added to ``sqrt(v_hat)`` as in the paper's algorithm, not folded
    into a rescaled step size.

    Parameters
    ----------
    params : dict of str -> ndarray
        Arrays updated in place; any shapes.
    lr : float
        Step size, > 0.
    betas : tuple of float
        ``(beta1, beta2)``, each in [0, 1).
    eps : float
        > 0.
    """

    def __init__(self, params, *, lr=2e-4, betas=(0.5, 0.999), eps=1e-8):
        super().__init__(params, lr)
        beta1, beta2 = betas
        for name, b in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"Adam: {name} must lie in [0, 1), got {b!r}")
        if not eps > 0:
            raise ValueError(f"Adam: eps must be > 0, got {eps!r}")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.m = {name: np.zeros_like(p) for name, p in params.items()}
        self.v = {name: np.zeros_like(p) for name, p in params.items()}

    def _state_arrays(self):
        return {"m": self.m, "v": self.v}

    def step(self, grads):
        """Apply one Adam update to every parameter, in place."""
        self._check_grads(grads)
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        bias1 = 1.0 - b1**self.t
        sqrt_bias2 = math.sqrt(1.0 - b2**self.t)
        for name, p in self.params.items():
            g, m, v, tmp = grads[name], self.m[name], self.v[name], self._tmp[name]
            # m = b1 m + (1 - b1) g
            m *= b1
            np.multiply(g, 1.0 - b1, out=tmp)
            m += tmp
            # v = b2 v + (1 - b2) g^2
            v *= b2
            np.multiply(g, g, out=tmp)
            tmp *= 1.0 - b2
            v += tmp
            # sqrt(v_hat) + eps = sqrt(v) / sqrt(1 - b2^t) + eps
            np.sqrt(v, out=tmp)
            tmp *= 1.0 / sqrt_bias2
            tmp += self.eps
            # p -= lr m_hat / (sqrt(v_hat) + eps), with m_hat = m / (1 - b1^t)
            np.divide(m, tmp, out=tmp)
            tmp *= self.lr / bias1
            p -= tmp


class SGD(_Optimizer):
    """Stochastic gradient descent with (heavy-ball) momentum.

    Per parameter::

        u = momentum u + g
        p = p - lr u

    With ``momentum = 0`` this is plain gradient descent.

    Parameters
    ----------
    params : dict of str -> ndarray
    lr : float
        > 0.
    momentum : float
        In [0, 1).
    """

    def __init__(self, params, *, lr, momentum=0.0):
        super().__init__(params, lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"SGD: momentum must lie in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)
        self.u = {name: np.zeros_like(p) for name, p in params.items()}

    def _state_arrays(self):
        return {"u": self.u}

    def step(self, grads):
        """Apply one update to every parameter, in place."""
        self._check_grads(grads)
        self.t += 1
        for name, p in self.params.items():
            u, tmp = self.u[name], self._tmp[name]
            u *= self.momentum
            u += grads[name]
            np.multiply(u, self.lr, out=tmp)
            p -= tmp
