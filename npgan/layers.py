"""Layers with hand-written forward and backward passes.

The layer contract
------------------
Every layer in this module, and :class:`Sequential`, follows the same rules.

Names
    ``layer.params[name]`` holds a parameter array; ``layer.grads[name]`` holds
    the gradient of the loss with respect to it, same shape and dtype.
    ``backward`` receives ``grad_out`` (dLoss/dOutput) and returns ``grad_in``
    (dLoss/dInput).

``forward(x, *, out=None)``
    Returns a new array, or writes the output into ``out`` and returns
    ``out`` when one is given, and keeps in the layer's cache what
    ``backward`` needs: a reference to ``x`` (``Dense``, ``ReLU``,
    ``LeakyReLU``) or to the output (``Sigmoid``, ``Tanh``). The cache holds
    one batch only: a second ``forward`` replaces it. A discriminator that
    judges real and fake samples therefore sees them in one call,
    concatenated along the batch axis, and is differentiated once for both.
    The caller must not modify ``x`` in place between ``forward`` and
    ``backward``, nor an ``out`` it passed to a layer that caches its output.

``backward(grad_out, *, param_grads=True, input_grad=True, out=None)``
    Uses the cache of the last ``forward``. With ``param_grads=True`` it
    *sets* (overwrites, never accumulates) ``grads[name]`` for every
    parameter; with ``param_grads=False`` it neither computes nor touches
    them, which is how a generator step backpropagates through a frozen
    discriminator without spending work on, or changing, the discriminator's
    weight gradients. With ``input_grad=False`` it skips ``grad_in`` and
    returns ``None`` (the first layer of a discriminator needs no gradient
    with respect to the images). ``grad_in`` is a new array, or ``out`` when
    one is given. ``grad_out`` is only read.

``out``
    An array of exactly the result's shape and dtype that shares no memory
    with the call's other arguments; a wrong shape or dtype is a
    ``ValueError``. It lets a caller keep buffers across steps instead of
    allocating new ones.

``zero_grad()``
    Fills every ``grads[name]`` with zeros. Because ``backward`` overwrites
    the gradients, training never needs it; it exists for code that wants a
    known state.

:class:`Sequential` keeps the outputs and input gradients of its inner
layers in buffers of its own, reused by every later call with the same batch
size and dtype, so that a training step allocates no activation arrays. Only
its own result (the last layer's output, the first layer's ``grad_in``) is
handed to the caller, as a new array or in the caller's ``out``; the inner
buffers are never returned.

Shapes use ``N`` for the batch size, ``D_in`` and ``D_out`` for feature
widths. Parameters keep the dtype they were created with, and a layer refuses
input of another dtype rather than silently mixing float32 and float64.
"""

import inspect
from collections import OrderedDict

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


def _result(out, shape, dtype, layer):
    """``out`` checked against the result's shape and dtype, or a new array."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != dtype:
        got = (
            f"{out.shape} {out.dtype}"
            if isinstance(out, np.ndarray)
            else type(out).__name__
        )
        raise ValueError(
            f"{layer!r}: out must be an array of shape {shape} and dtype {dtype}, "
            f"got {got}"
        )
    return out


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
        # dtype.kind "f" is a real floating dtype, as np.issubdtype(dtype,
        # np.floating) says, at a fraction of its cost (it runs every call).
        if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
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

    def forward(self, x, *, out=None):
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
        y = _result(out, (x.shape[0], self.out_features), W.dtype, self)
        self._x = x
        np.matmul(x, W, out=y)  # (N, D_in) @ (D_in, D_out) -> (N, D_out)
        y += self.params["b"]  # (N, D_out) + (D_out,) broadcasts over the batch
        return y

    def backward(self, grad_out, *, param_grads=True, input_grad=True, out=None):
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
        if grad_out.dtype != self.params["W"].dtype:
            raise TypeError(
                f"{self!r}: expected grad_out of dtype {self.params['W'].dtype}, "
                f"got {grad_out.dtype}"
            )
        if param_grads:
            # (D_in, N) @ (N, D_out) -> (D_in, D_out), written in place
            np.matmul(self._x.T, grad_out, out=self.grads["W"])
            np.sum(grad_out, axis=0, out=self.grads["b"])  # (N, D_out) -> (D_out,)
        if not input_grad:
            return None
        W = self.params["W"]
        shape = (self._x.shape[0], self.in_features)
        grad_in = _result(out, shape, np.result_type(grad_out, W), self)
        if self.out_features == 1:
            # An outer product: (N, 1) * (D_in,) broadcasts to (N, D_in), the
            # same single products as the matrix product, without its overhead.
            np.multiply(grad_out, W[:, 0], out=grad_in)
        else:
            np.matmul(grad_out, W.T, out=grad_in)  # (N, D_out) @ (D_out, D_in)
        return grad_in


class ReLU(Layer):
    """``y = max(x, 0)``. Shapes: any -> same. At ``x = 0`` the gradient is 0."""

    def __init__(self):
        super().__init__()
        self._x = None

    def forward(self, x, *, out=None):
        self._check_float(x)
        y = _result(out, x.shape, x.dtype, self)
        self._x = x
        return np.maximum(x, 0, out=y)

    def backward(self, grad_out, *, param_grads=True, input_grad=True, out=None):
        if not input_grad:
            return None
        grad_in = _result(out, grad_out.shape, grad_out.dtype, self)
        np.copyto(grad_in, np.where(self._x > 0, grad_out, 0))
        return grad_in


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

    def forward(self, x, *, out=None):
        self._check_float(x)
        y = _result(out, x.shape, x.dtype, self)
        self._x = x
        # For 0 <= slope < 1, max(x, slope * x) picks x when x > 0 and slope * x
        # otherwise, in two passes and without a mask array.
        np.multiply(x, x.dtype.type(self.slope), out=y)
        np.maximum(x, y, out=y)
        return y

    def backward(self, grad_out, *, param_grads=True, input_grad=True, out=None):
        if not input_grad:
            return None
        grad_in = _result(out, grad_out.shape, grad_out.dtype, self)
        # The local derivative is 1 where x > 0 and slope elsewhere: the
        # comparison gives 1 or 0, the maximum with slope turns 0 into slope,
        # and the product is exactly grad_out or grad_out * slope. Three
        # plain passes, far faster than a masked select (np.where).
        np.greater(self._x, 0, out=grad_in)
        np.maximum(grad_in, grad_out.dtype.type(self.slope), out=grad_in)
        np.multiply(grad_in, grad_out, out=grad_in)
        return grad_in


class Sigmoid(Layer):
    """``y = 1 / (1 + exp(-x))``; dy/dx = y (1 - y). Shapes: any -> same."""

    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x, *, out=None):
        self._check_float(x)
        y = F.sigmoid(x)
        if out is not None:
            np.copyto(_result(out, x.shape, x.dtype, self), y)
            y = out
        self._y = y
        return y

    def backward(self, grad_out, *, param_grads=True, input_grad=True, out=None):
        if not input_grad:
            return None
        y = self._y
        grad_in = grad_out * y * (1 - y)
        if out is not None:
            np.copyto(_result(out, grad_in.shape, grad_in.dtype, self), grad_in)
            return out
        return grad_in


class Tanh(Layer):
    """``y = tanh(x)``; dy/dx = 1 - y^2. Shapes: any -> same."""

    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x, *, out=None):
        self._check_float(x)
        y = _result(out, x.shape, x.dtype, self)
        np.tanh(x, out=y)
        self._y = y
        return y

    def backward(self, grad_out, *, param_grads=True, input_grad=True, out=None):
        if not input_grad:
            return None
        y = self._y
        grad_in = _result(out, grad_out.shape, grad_out.dtype, self)
        np.multiply(y, y, out=grad_in)  # y^2
        np.subtract(1, grad_in, out=grad_in)  # 1 - y^2
        np.multiply(grad_out, grad_in, out=grad_in)
        return grad_in


class Sequential(Layer):
    """Layers applied in order; follows the same contract as a single layer.

    ``params`` and ``grads`` are flat dicts whose keys are
    ``"<layer index>.<name>"`` (``"0.W"``, ``"0.b"``, ``"2.W"``, ...) and whose
    values are the very arrays the layers hold, so an optimizer that updates
    ``params`` in place updates the layers.

    Shapes: ``x`` (N, D_in) -> (N, D_out) of the first and last layers.
    """

    #: Most batch sizes (and dtypes) whose buffers are kept at once.
    max_workspaces = 4
    #: Most bytes of buffers kept over all batch sizes; a batch size whose
    #: buffers alone exceed it (a one-off evaluation of many samples) gets
    #: fresh arrays that are not kept.
    max_workspace_bytes = 64 * 2**20

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
        # Layers written against the older contract (no ``out``) still work:
        # they get no buffer and allocate as they always did.
        self._fwd_out = [_takes_out(layer.forward) for layer in self.layers]
        self._bwd_out = [_takes_out(layer.backward) for layer in self.layers]
        # (N, dtype) -> _Workspace, least recently used first.
        self._workspaces = OrderedDict()

    def __repr__(self):
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential({inner})"

    def _workspace(self, n, dtype):
        key = (n, dtype)
        ws = self._workspaces.get(key)
        if ws is None:
            ws = self._workspaces[key] = _Workspace(len(self.layers))
            while len(self._workspaces) > self.max_workspaces:
                self._workspaces.popitem(last=False)
        else:
            self._workspaces.move_to_end(key)
        return ws

    def _keep(self, ws, slots, i, array):
        """Record a freshly returned array as the buffer of slot ``i``."""
        slots[i] = array
        ws.nbytes += array.nbytes
        total = sum(w.nbytes for w in self._workspaces.values())
        while total > self.max_workspace_bytes and self._workspaces:
            _, dropped = self._workspaces.popitem(last=False)
            total -= dropped.nbytes

    def forward(self, x, *, out=None):
        """Apply each layer in turn; every layer caches its own input.

        The inner layers write into this network's buffers for ``x``'s batch
        size; the result is a new array, or ``out``.
        """
        last = len(self.layers) - 1
        if last < 0:
            return x if out is None else _copy_into(out, x, self)
        ws = self._workspace(x.shape[0], x.dtype) if last > 0 else None
        for i in range(last):
            layer = self.layers[i]
            if not self._fwd_out[i]:
                x = layer.forward(x)
                continue
            buf = ws.fwd[i]
            y = layer.forward(x, out=buf)
            if buf is None:
                self._keep(ws, ws.fwd, i, y)
            x = y
        layer = self.layers[last]
        if self._fwd_out[last]:
            return layer.forward(x, out=out)
        y = layer.forward(x)
        return y if out is None else _copy_into(out, y, self)

    def backward(self, grad_out, *, param_grads=True, input_grad=True, out=None):
        """Backpropagate ``grad_out`` through every layer, last to first.

        ``param_grads`` is passed to every layer. ``input_grad=False`` lets the
        first layer skip its input gradient (for ``Dense`` a whole matrix
        product) and makes the call return ``None``. The gradients between
        layers live in this network's buffers; the returned ``grad_in`` is a
        new array, or ``out``.
        """
        last = len(self.layers) - 1
        if last < 0:
            if not input_grad:
                return None
            return grad_out if out is None else _copy_into(out, grad_out, self)
        ws = self._workspace(grad_out.shape[0], grad_out.dtype) if last > 0 else None
        for i in range(last, 0, -1):
            layer = self.layers[i]
            if not self._bwd_out[i]:
                grad_out = layer.backward(grad_out, param_grads=param_grads)
                continue
            buf = ws.bwd[i]
            g = layer.backward(grad_out, param_grads=param_grads, out=buf)
            if buf is None:
                self._keep(ws, ws.bwd, i, g)
            grad_out = g
        layer = self.layers[0]
        if not input_grad:
            layer.backward(grad_out, param_grads=param_grads, input_grad=False)
            return None
        if self._bwd_out[0]:
            return layer.backward(grad_out, param_grads=param_grads, out=out)
        g = layer.backward(grad_out, param_grads=param_grads)
        return g if out is None else _copy_into(out, g, self)

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


class _Workspace:
    """Buffers of one batch size: inner outputs and inner input gradients."""

    __slots__ = ("fwd", "bwd", "nbytes")

    def __init__(self, n_layers):
        self.fwd = [None] * n_layers
        self.bwd = [None] * n_layers
        self.nbytes = 0


def _takes_out(method):
    try:
        return "out" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def _copy_into(out, value, layer):
    np.copyto(_result(out, value.shape, value.dtype, layer), value)
    return out


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
