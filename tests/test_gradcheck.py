"""The gradient checker itself: it must catch wrong gradients."""

import numpy as np
import pytest

from npgan.gradcheck import check_layer, check_loss
from npgan.layers import Dense, Tanh


class _WrongTanh(Tanh):
    """Tanh whose backward forgets the square: 1 - y instead of 1 - y^2."""

    def backward(self, grad_out, *, param_grads=True, input_grad=True):
        return grad_out * (1 - self._y)


class _WrongBiasDense(Dense):
    """Dense whose bias gradient is the mean instead of the sum over the batch."""

    def backward(self, grad_out, *, param_grads=True, input_grad=True):
        grad_in = super().backward(
            grad_out, param_grads=param_grads, input_grad=input_grad
        )
        self.grads["b"][:] = grad_out.mean(axis=0)
        return grad_in


def test_checker_catches_wrong_input_gradient():
    rng = np.random.default_rng(0)
    report = check_layer(_WrongTanh(), rng.standard_normal((4, 3)), rng=rng)
    assert not report.ok(1e-3)
    assert report.worst == "input"
    assert "analytic" in str(report) and "numeric" in str(report)


def test_checker_catches_wrong_parameter_gradient_and_names_it():
    rng = np.random.default_rng(0)
    layer = _WrongBiasDense(3, 2, rng=rng, dtype=np.float64)
    report = check_layer(layer, rng.standard_normal((4, 3)), rng=rng)
    assert not report.ok(1e-3)
    assert report.worst == "b"


def test_checker_catches_wrong_loss_gradient():
    def half_gradient_loss(x):
        return float(np.sum(x**2)), x  # the true gradient is 2 x

    rng = np.random.default_rng(1)
    report = check_loss(half_gradient_loss, rng.standard_normal(5), rng=rng)
    assert report.max_rel_error == pytest.approx(1 / 3, rel=1e-4)


def test_checker_passes_a_correct_layer_and_counts_entries():
    rng = np.random.default_rng(2)
    layer = Dense(3, 2, rng=rng, dtype=np.float64)
    report = check_layer(layer, rng.standard_normal((4, 3)), rng=rng)
    assert report.ok(1e-6), str(report)
    assert report.checked == 4 * 3 + 3 * 2 + 2


def test_checker_refuses_float32():
    rng = np.random.default_rng(3)
    with pytest.raises(TypeError, match="float64"):
        check_layer(Tanh(), rng.standard_normal((2, 2)).astype(np.float32), rng=rng)
    with pytest.raises(TypeError, match="parameter 'W' must be a float64"):
        check_layer(Dense(2, 2, rng=rng), rng.standard_normal((2, 2)), rng=rng)


def test_checker_restores_the_parameters():
    rng = np.random.default_rng(4)
    layer = Dense(3, 2, rng=rng, dtype=np.float64)
    before = {k: v.copy() for k, v in layer.params.items()}
    check_layer(layer, rng.standard_normal((2, 3)), rng=rng)
    for name, value in before.items():
        np.testing.assert_array_equal(layer.params[name], value)
