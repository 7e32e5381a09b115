"""Layers with hand-written forward and backward passes.

The layer contract
------------------
Every layer in this module, and :class:`Sequential`, follows the same rules.

Names
    ``layer.params[name]`` holds a parameter array; ``layer.grads[name]`` holds
    the gradient of the loss with respect to it, same shape and dtype.
    ``backward`` receives ``grad_out`` (dLoss/dOutput) and returns ``grad_in``
    (dLoss/dInput).

``forward(x)``
    Returns a new array and keeps in the layer's cache what ``backward``
    needs: a reference to ``x`` (``Dense``, ``ReLU``, ``LeakyReLU``) or to the
    output (``Sigmoid``, ``Tanh``). The cache holds one batch only: a second
    ``forward`` replaces it. A discriminator that judges real and fake
    samples therefore sees them in one call, concatenated along the batch
    axis, and is differentiated once for both. The caller must not modify
    ``x`` in place between ``forward`` and ``backward``.

``backward(grad_out, *, param_grads=True, input_grad=True)``
    Uses the cache of the last ``forward``. With ``param_grads=True`` it
    *sets* (overwrites, never accumulates) ``grads[name]`` for every
    parameter; with ``param_grads=False`` it neither computes nor touches
    them, which is how a generator step backpropagates through a frozen
    discriminator without spending work on, or changing, the discriminator's
    weight gradients. With ``input_grad=False`` it skips ``grad_in`` and
    returns ``None`` (the first layer of a discriminator needs no gradient
    with respect to the images).

``zero_grad()``
    Fills every ``grads[name]`` with zeros. Because ``backward`` overwrites
    the gradients, training never needs it; it exists for code that wants a
    known state.

Shapes use ``N`` for the batch size, ``D_in`` and ``D_out`` for feature
widths. Parameters keep the dtype they were created with, and a layer refuses
input of another dtype rather than silently mixing float32 and float64.
"""

import numpy as np

from npgan import functional as F

__all__ = [
    "Layer",
    "Dense",
    "ReLU",
    "LeakyReLU",
    "Sigmoid",
    "Tanh",
    "Sequential",
    "mlp",
]


class Layer:
    """Base class: no parameters, and the shared input checks."""

    def __init__(self):
        self.params = {}
        self.grads = {}

    def zero_grad(self):
        """Fill every parameter gradient with zeros, in place."""
        for g in self.grads.values():
            g.fill(0)

    def _check_float(self, x):
        if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
            kind = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
            raise TypeError(f"{self!r}: expected a floating-point ndarray, got {kind}")

    def __repr__(self):
        return f"{type(self).__name__}()"


class Dense(Layer):
    """Affine layer ``y = x @ W + b``.

    Parameters
    ----------
    in_features, out_features : int
        ``D_in`` and ``D_out``.
    rng : numpy.random.Generator
        Source of the initial weights.
    init : {"glorot", "he"}
        ``"glorot"``: uniform on ``[-a, a]`` with ``a = sqrt(6 / (D_in + D_out))``
        (Glorot & Bengio, 2010), for tanh and sigmoid units. ``"he"``: normal
        with standard deviation ``sqrt(2 / D_in)`` (He et al., 2015), for
        rectifiers. The bias starts at zero.
    dtype : numpy floating dtype
        Dtype of the parameters, their gradients, and the expected input.

    Shapes: ``x`` (N, D_in) -> ``y`` (N, D_out); ``W`` (D_in, D_out); ``b`` (D_out,).
    """

    def __init__(
        self, in_features, out_features, *, rng, init="glorot", dtype=np.float32
    ):
        super().__init__()
        for name, value in (
            ("in_features", in_features),
            ("out_features", out_features),
        ):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(
                    f"Dense: {name} must be an integer >= 1, got {value!r}"
                )
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"Dense: rng must be a numpy.random.Generator, got {type(rng).__name__}"
            )
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating):
            raise TypeError(f"Dense: dtype must be a floating dtype, got {dtype}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        shape = (self.in_features, self.out_features)
        if init == "glorot":
            limit = np.sqrt(6.0 / (in_features + out_features))
            W = rng.uniform(-limit, limit, size=shape)
        elif init == "he":
            W = rng.standard_normal(size=shape) * np.sqrt(2.0 / in_features)
        else:
            raise ValueError(f"Dense: init must be 'glorot' or 'he', got {init!r}")
        self.params = {"W": W.astype(dtype), "b": np.zeros(out_features, dtype=dtype)}
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self._x = None

    def __repr__(self):
        return f"Dense({self.in_features} -> {self.out_features})"

    def forward(self, x):
        """``x`` (N, D_in) -> (N, D_out); caches a reference to ``x``."""
        self._check_float(x)
        W = self.params["W"]
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"{self!r}: expected input of shape (N, {self.in_features}), "
                f"got {x.shape}"
            )
        if x.dtype != W.dtype:
            raise TypeError(
                f"{self!r}: expected input of dtype {W.dtype}, got {x.dtype}"
            )
        self._x = x
        y = x @ W  # (N, D_in) @ (D_in, D_out) -> (N, D_out)
        y += self.params["b"]  # (N, D_out) + (D_out,) broadcasts over the batch
        return y

    def backward(self, grad_out, *, param_grads=True, input_grad=True):
        """``grad_out`` (N, D_out) -> ``grad_in`` (N, D_in), or None.

        dL/dW = x^T grad_out and dL/db = sum over the batch of grad_out,
        written into ``grads`` when ``param_grads`` is true.
        """
        if self._x is None:
            raise RuntimeError(f"{self!r}: backward called before forward")
        expected = (self._x.shape[0], self.out_features)
        if grad_out.shape != expected:
            raise ValueError(
                f"{self!r}: expected grad_out of shape {expected}, got {grad_out.shape}"
            )
        if param_grads:
            # (D_in, N) @ (N, D_out) -> (D_in, D_out), written in place
            np.matmul(self._x.T, grad_out, out=self.grads["W"])
            np.sum(grad_out, axis=0, out=self.grads["b"])  # (N, D_out) -> (D_out,)
        if not input_grad:
            return None
        return grad_out @ self.params["W"].T  # (N, D_out) @ (D_out, D_in) -> (N, D_in)


class ReLU(Layer):
    """``y = max(x, 0)``. Shapes: any -> same. At ``x = 0`` the gradient is 0."""

    def __init__(self):
        super().__init__()
        self._x = None

    def forward(self, x):
        self._check_float(x)
        self._x = x
        return np.maximum(x, 0)

    def backward(self, grad_out, *, param_grads=True, input_grad=True):
        if not input_grad:
            return None
        return np.where(self._x > 0, grad_out, 0).astype(grad_out.dtype, copy=False)


class LeakyReLU(Layer):
    """``y = x`` for ``x > 0``, ``slope * x`` otherwise. Shapes: any -> same.

    Parameters
    ----------
    slope : float
        Slope of the negative part, in [0, 1). At ``x = 0`` the gradient is
        ``slope``.
    """

    def __init__(self, slope=0.2):
        super().__init__()
        if not 0.0 <= slope < 1.0:
            raise ValueError(f"LeakyReLU: slope must lie in [0, 1), got {slope!r}")
        self.slope = float(slope)
        self._x = None

    def __repr__(self):
        return f"LeakyReLU({self.slope})"

    def forward(self, x):
        self._check_float(x)
        self._x = x
        # For 0 <= slope < 1, max(x, slope * x) picks x when x > 0 and slope * x
        # otherwise, in two passes and without a mask array.
        y = x * x.dtype.type(self.slope)
        np.maximum(x, y, out=y)
        return y

    def backward(self, grad_out, *, param_grads=True, input_grad=True):
        if not input_grad:
            return None
        slope = grad_out.dtype.type(self.slope)
        return np.where(self._x > 0, grad_out, grad_out * slope)


class Sigmoid(Layer):
    """``y = 1 / (1 + exp(-x))``; dy/dx = y (1 - y). Shapes: any -> same."""

    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x):
        self._check_float(x)
        self._y = F.sigmoid(x)
        return self._y

    def backward(self, grad_out, *, param_grads=True, input_grad=True):
        if not input_grad:
            return None
        y = self._y
        return grad_out * y * (1 - y)


class Tanh(Layer):
    """``y = tanh(x)``; dy/dx = 1 - y^2. Shapes: any -> same."""

    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x):
        self._check_float(x)
        self._y = np.tanh(x)
        return self._y

    def backward(self, grad_out, *, param_grads=True, input_grad=True):
        if not input_grad:
            return None
        y = self._y
        return grad_out * (1 - y * y)


class Sequential(Layer):
    """Layers applied in order; follows the same contract as a single layer.

    ``params`` and ``grads`` are flat dicts whose keys are
    ``"<layer index>.<name>"`` (``"0.W"``, ``"0.b"``, ``"2.W"``, ...) and whose
    values are the very arrays the layers hold, so an optimizer that updates
    ``params`` in place updates the layers.

    Shapes: ``x`` (N, D_in) -> (N, D_out) of the first and last layers.
    """

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(
                    f"Sequential: item {i} is {type(layer).__name__}, not a Layer"
                )
        self.layers = list(layers)
        for i, layer in enumerate(self.layers):
            for name in layer.params:
                self.params[f"{i}.{name}"] = layer.params[name]
                self.grads[f"{i}.{name}"] = layer.grads[name]

    def __repr__(self):
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential({inner})"

    def forward(self, x):
        """Apply each layer in turn; every layer caches its own input."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_out, *, param_grads=True, input_grad=True):
        """Backpropagate ``grad_out`` through every layer, last to first.

        ``param_grads`` is passed to every layer. ``input_grad=False`` lets the
        first layer skip its input gradient (for ``Dense`` a whole matrix
        product) and makes the call return ``None``.
        """
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            need_in = input_grad or i > 0
            grad_out = self.layers[i].backward(
                grad_out, param_grads=param_grads, input_grad=need_in
            )
        return grad_out

    def state_dict(self):
        """Copies of every parameter, keyed as in ``params``."""
        return {name: p.copy() for name, p in self.params.items()}

    def load_state_dict(self, state):
        """Copy ``state`` into the existing parameter arrays.

        The names, shapes and dtypes must match ``params`` exactly; nothing is
        changed unless all of them do.
        """
        missing = sorted(set(self.params) - set(state))
        extra = sorted(set(state) - set(self.params))
        if missing or extra:
            raise ValueError(
                f"Sequential.load_state_dict: missing {missing}, unexpected {extra}"
            )
        for name, p in self.params.items():
            value = np.asarray(state[name])
            if value.shape != p.shape or value.dtype != p.dtype:
                raise ValueError(
                    f"Sequential.load_state_dict: '{name}' expected {p.shape} "
                    f"{p.dtype}, got {value.shape} {value.dtype}"
                )
        for name, p in self.params.items():
            np.copyto(p, state[name])


def mlp(
    sizes,
    *,
    rng,
    hidden_activation=lambda: LeakyReLU(0.2),
    output_activation=None,
    init="glorot",
    dtype=np.float32,
):
    """Build a multilayer perceptron as a :class:`Sequential`.

    Parameters
    ----------
    sizes : sequence of int
        Widths ``[D_0, D_1, ..., D_L]``; there are ``L`` dense layers.
    rng : numpy.random.Generator
    hidden_activation : callable returning a Layer
        Called once per hidden layer, so no layer object is shared.
    output_activation : callable returning a Layer, or None
        None leaves the output linear (logits).
    init, dtype
        Passed to every :class:`Dense`.

    Shapes: (N, D_0) -> (N, D_L).
    """
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"mlp: sizes needs at least two widths, got {sizes}")
    layers = []
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(Dense(d_in, d_out, rng=rng, init=init, dtype=dtype))
        if i < len(sizes) - 2:
            layers.append(hidden_activation())
        elif output_activation is not None:
            layers.append(output_activation())
    return Sequential(*layers)
