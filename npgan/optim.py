"""Optimizers that update parameter arrays in place.

An optimizer is built on a dict of parameter arrays (``model.params``) and
owns its state: one step counter and, per parameter, moment arrays of the
parameter's shape and dtype. Two networks get two optimizers, so they never
share moments or step counts. ``step(grads)`` takes a dict with the same keys
and updates every parameter in place, keeping its dtype; float32 parameters
are updated in float32 arithmetic.

``state_dict()`` returns the full state as plain arrays and numbers (for
checkpoints); ``load_state_dict`` restores it exactly.

How a step runs
---------------
An update is a short sequence of element-wise operations per parameter. Done
on whole arrays, every operation would stream its operands from main memory,
and the temporary would be as large as the largest parameter. Instead each
contiguous parameter is cut into pieces of :data:`PIECE` elements, and the
whole sequence runs on one piece while its slices of the parameter, the
gradient, the moments and a small scratch array stay in cache.
The pieces are shared out among :func:`npgan._parallel.get_num_threads`
threads (NumPy releases the GIL inside each operation), each thread taking
the next piece when it is done with one. Element-wise work
gives the same result however it is cut, so the pieces and the threads change
no bit of the result. A step allocates nothing once the pieces are cut; they
are cut again only when the gradient arrays passed in are other arrays than
at the previous step.
"""

import math

import numpy as np

from npgan import _parallel

__all__ = ["Adam", "SGD", "PIECE"]

#: Elements per piece of an update. Large enough that a ufunc call's fixed
#: cost (about a microsecond) is small beside its work, small enough that the
#: piece's five slices (2.5 MiB in float32) stay in cache between the dozen
#: operations of an Adam step. Measured on a 2-core EPYC (1 MiB L2 per core,
#: 32 MiB L3): 2^17 was a few percent faster than 2^15, 2^16 and 2^18.
PIECE = 1 << 17


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
        self._plan = None  # cut by _cut() at the first step
        self._plan_arrays = None
        self._plan_threads = 0

    def _check_grads(self, grads):
        if grads.keys() != self.params.keys():
            missing = sorted(set(self.params) - set(grads))
            extra = sorted(set(grads) - set(self.params))
            raise ValueError(
                f"{type(self).__name__}.step: missing grads {missing}, "
                f"unexpected {extra}"
            )
        # Checked for every parameter before any is updated, so that a bad
        # gradient leaves the whole model and the step counter as they were.
        for name, p in self.params.items():
            g = grads[name]
            if not isinstance(g, np.ndarray) or g.shape != p.shape:
                shape = g.shape if isinstance(g, np.ndarray) else type(g).__name__
                raise ValueError(
                    f"{type(self).__name__}.step: gradient '{name}' has shape "
                    f"{shape}, expected {p.shape}"
                )
            if g.dtype != p.dtype:
                raise TypeError(
                    f"{type(self).__name__}.step: gradient '{name}' has dtype "
                    f"{g.dtype}, expected {p.dtype}"
                )

    def _state_arrays(self):
        raise NotImplementedError

    def _arrays_of(self, grads):
        """Identities of every array a step touches, to tell when to re-cut."""
        ids = [id(p) for p in self.params.values()]
        ids += [id(grads[name]) for name in self.params]
        for state in self._state_arrays().values():
            ids += [id(state[name]) for name in self.params]
        return ids

    def _cut(self, grads):
        """Pieces ``(p, g, *state)`` and one scratch dict per thread.

        Reuses the previous cut while ``grads`` holds the same arrays and the
        thread count is unchanged.
        """
        threads = _parallel.get_num_threads()
        if (
            self._plan is not None
            and self._plan_threads == threads
            and self._plan_arrays == self._arrays_of(grads)
        ):
            return self._plan
        states = list(self._state_arrays().values())
        pieces = []
        for name, p in self.params.items():
            g = grads[name]
            arrays = (p, g, *(state[name] for state in states))
            if p.shape == g.shape and all(a.flags.c_contiguous for a in arrays):
                flat = [a.reshape(-1) for a in arrays]
                for start in range(0, p.size, PIECE):
                    pieces.append(tuple(a[start : start + PIECE] for a in flat))
            else:  # a strided parameter or gradient: one piece, not flattened
                pieces.append(arrays)
        pieces.sort(key=lambda piece: -piece[0].size)  # the longest go first
        total = sum(piece[0].size for piece in pieces)
        n_threads = max(1, min(threads, total // PIECE))
        # Each thread gets a scratch array per dtype, as long as the longest
        # piece of that dtype: any thread may take any piece.
        longest = {}
        for piece in pieces:
            dt = piece[0].dtype
            longest[dt] = max(longest.get(dt, 0), piece[0].size)
        scratches = [
            {dt: np.empty(n, dtype=dt) for dt, n in longest.items()}
            for _ in range(n_threads)
        ]
        self._plan = (pieces, scratches)
        self._plan_arrays = self._arrays_of(grads)
        self._plan_threads = threads
        return self._plan

    def _run(self, grads, update, constants):
        """Apply ``update`` to every piece, the threads taking pieces in turn.

        The threads share one iterator over the pieces (``next`` on a list
        iterator is atomic under the GIL), so a thread slowed down by another
        process on its core simply takes fewer pieces.
        """
        pieces, scratches = self._cut(grads)
        typed = _typed(constants, pieces)
        shared = iter(pieces)
        _parallel.run(
            [
                lambda scratch=scratch: update(shared, typed, scratch)
                for scratch in scratches
            ]
        )

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
        # lr m_hat / (sqrt(v_hat) + eps) = m / d with
        # d = (sqrt(v) / sqrt(1 - b2^t) + eps) (1 - b1^t) / lr
        #   = sqrt(v) * scale + shift.
        scale = bias1 / (self.lr * sqrt_bias2)
        shift = self.eps * bias1 / self.lr
        constants = (b1, 1.0 - b1, b2, 1.0 - b2, scale, shift)
        self._run(grads, _adam_update, constants)


def _typed(constants, pieces):
    """The constants as scalars of each parameter dtype among ``pieces``.

    A Python float would be cast to the array's dtype on every call anyway;
    a ready scalar of that dtype makes each of the many small calls cheaper.
    """
    dtypes = {piece[0].dtype for piece in pieces}
    return {dt: tuple(map(dt.type, constants)) for dt in dtypes}


def _adam_update(pieces, typed, scratch):
    mul, add = np.multiply, np.add
    for p, g, m, v in pieces:
        tmp = scratch[p.dtype][: p.size].reshape(p.shape)
        b1, one_b1, b2, one_b2, scale, shift = typed[p.dtype]
        # m = b1 m + (1 - b1) g
        mul(m, b1, out=m)
        mul(g, one_b1, out=tmp)
        add(m, tmp, out=m)
        # v = b2 v + (1 - b2) g^2
        mul(v, b2, out=v)
        mul(g, g, out=tmp)
        mul(tmp, one_b2, out=tmp)
        add(v, tmp, out=v)
        # p -= m / (sqrt(v) * scale + shift)
        np.sqrt(v, out=tmp)
        mul(tmp, scale, out=tmp)
        add(tmp, shift, out=tmp)
        np.divide(m, tmp, out=tmp)
        np.subtract(p, tmp, out=p)


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
        self._run(grads, _sgd_update, (self.momentum, self.lr))


def _sgd_update(pieces, typed, scratch):
    for p, g, u in pieces:
        tmp = scratch[p.dtype][: p.size].reshape(p.shape)
        momentum, lr = typed[p.dtype]
        np.multiply(u, momentum, out=u)
        np.add(u, g, out=u)
        np.multiply(u, lr, out=tmp)
        np.subtract(p, tmp, out=p)
