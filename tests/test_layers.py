"""Every layer's backward pass against central finite differences (float64).

The scalar checked is L = sum(out * R) with a fixed random R, so dL/dout = R.
forward() returns reused buffers and the activations work in place: every
call gets a copy of its input.
"""

import numpy as np
import pytest

from npgan.layers import Dropout, LeakyReLU, Linear, ReLU, Sequential, Sigmoid, Tanh, mlp

F64 = np.float64
TOL = 1e-6


def away_from_zero(rng, shape, margin=0.1):
    """Inputs with |x| ≥ margin, so that x ± 2h never crosses a ReLU kink."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(margin, 2.0, size=shape)


def test_linear_gradients(gc):
    rng = np.random.default_rng(0)
    layer = Linear(7, 5, rng, dtype=F64)
    layer.b[...] = rng.standard_normal(5)
    x = rng.standard_normal((4, 7))
    R = rng.standard_normal((4, 5))

    def loss():
        return float(np.sum(layer.forward(x.copy()) * R))

    out = layer.forward(x.copy()).copy()
    np.testing.assert_allclose(out, x @ layer.W + layer.b, rtol=1e-13, atol=1e-13)
    dx = layer.backward(R.copy()).copy()
    dW, db = layer.dW.copy(), layer.db.copy()
    errors = {"dW": gc.rel_error(dW, gc.fd_gradient(loss, layer.W)),
              "db": gc.rel_error(db, gc.fd_gradient(loss, layer.b)),
              "dx": gc.rel_error(dx, gc.fd_gradient(loss, x))}
    for name, err in errors.items():
        gc.measured(f"FD layer Linear {name}", err)
    assert max(errors.values()) < TOL, errors


def test_linear_input_grad_false_still_fills_param_grads():
    rng = np.random.default_rng(1)
    layer = Linear(3, 2, rng, dtype=F64)
    x, R = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    layer.forward(x.copy())
    assert layer.backward(R.copy(), input_grad=False) is None
    np.testing.assert_allclose(layer.dW, x.T @ R, rtol=1e-13)
    np.testing.assert_allclose(layer.db, R.sum(axis=0), rtol=1e-13)


ACTIVATIONS = {
    "ReLU": (ReLU, lambda x: np.maximum(x, 0)),
    "LeakyReLU(0.2)": (lambda: LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    "LeakyReLU(0.01)": (lambda: LeakyReLU(0.01), lambda x: np.where(x > 0, x, 0.01 * x)),
    "Tanh": (Tanh, np.tanh),
    "Sigmoid": (Sigmoid, lambda x: 1 / (1 + np.exp(-x))),
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_gradients(gc, name):
    make, formula = ACTIVATIONS[name]
    layer = make()
    rng = np.random.default_rng(2)
    x = away_from_zero(rng, (5, 6))
    R = rng.standard_normal((5, 6))

    def loss():
        return float(np.sum(layer.forward(x.copy()) * R))

    out = layer.forward(x.copy()).copy()
    np.testing.assert_allclose(out, formula(x), rtol=1e-13, atol=1e-15)
    grad = layer.backward(R.copy()).copy()
    err = gc.rel_error(grad, gc.fd_gradient(loss, x))
    gc.measured(f"FD layer {name} dx", err)
    assert err < TOL


def test_activations_work_in_place():
    """The documented contract: the activation overwrites its input array."""
    x = np.array([[-1.0, 2.0]])
    assert ReLU().forward(x) is x and x[0, 0] == 0
    x = np.array([[0.3]])
    assert Tanh().forward(x) is x and x[0, 0] == np.tanh(0.3)


def seeded_dropout_forward(layer, x, seed=11, train=True):
    """Dropout with a fixed mask: the same seed before every forward."""
    layer.rng = np.random.default_rng(seed)
    return layer.forward(x, train=train)


@pytest.mark.parametrize("p", [0.3, 0.5])
def test_dropout_gradient_with_fixed_mask(gc, p):
    layer = Dropout(p, np.random.default_rng(0))
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 8))
    R = rng.standard_normal((6, 8))

    def loss():
        return float(np.sum(seeded_dropout_forward(layer, x.copy()) * R))

    out = seeded_dropout_forward(layer, x.copy()).copy()
    mask = layer.mask.copy()
    assert set(np.unique(mask)) <= {0.0, 1 / (1 - p)}
    assert 0 < np.count_nonzero(mask) < mask.size
    np.testing.assert_array_equal(out, x * mask)
    grad = layer.backward(R.copy()).copy()
    np.testing.assert_array_equal(grad, R * mask)
    err = gc.rel_error(grad, gc.fd_gradient(loss, x))
    gc.measured(f"FD layer Dropout({p}) dx", err)
    assert err < TOL


def test_dropout_rate_scale_and_eval_mode():
    p = 0.3
    layer = Dropout(p, np.random.default_rng(5))
    x = np.ones((1000, 1000), dtype=np.float32)
    out = layer.forward(x.copy())
    dropped = np.mean(out == 0)
    assert abs(dropped - p) < 3e-3, dropped  # 1e6 draws: std of the rate 4.6e-4
    np.testing.assert_allclose(out[out != 0], 1 / (1 - p), rtol=1e-6)
    assert abs(out.mean() - 1) < 5e-3  # inverted dropout keeps the mean
    # evaluation: identity, and backward passes the gradient through
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(layer.forward(x.copy(), train=False), x)
    np.testing.assert_array_equal(layer.backward(x.copy()), x)
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.0, np.random.default_rng(0))


@pytest.mark.parametrize("shape", [(64, 16, 14, 14), (7, 3), (1, 1)])
def test_dropout_masks_are_the_stored_runs_masks(shape):
    """The masks come from the same random numbers as before the faster draw
    (16-bit pieces of rng.bytes), and leave the generator in the same state: a
    book run trained before the change is the run the code trains now."""
    p = 0.3
    layer = Dropout(p, np.random.default_rng(9))
    x = np.ones(shape, dtype=np.float32)
    layer.forward(x)
    old_rule = np.random.default_rng(9)
    draws = np.frombuffer(old_rule.bytes(2 * x.size), dtype=np.uint16).reshape(shape)
    expected = (draws >= round(p * 65536)) * np.float32(1 / (1 - p))
    np.testing.assert_array_equal(layer.mask, expected)
    assert layer.rng.random() == old_rule.random()


def reseed_dropouts(net, seed=21):
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Dropout):
            layer.rng = np.random.default_rng(seed + i)


@pytest.mark.parametrize("hidden,output,dropout", [
    ("relu", "tanh", 0.0), ("leaky_relu", None, 0.0), ("leaky_relu", "tanh", 0.3),
    ("relu", "sigmoid", 0.25), ("tanh", None, 0.0), ("sigmoid", "tanh", 0.0),
])
def test_sequential_mlp_gradients(gc, hidden, output, dropout):
    rng = np.random.default_rng(4)
    net = mlp((6, 5, 4, 3), hidden, output, rng, dtype=F64, dropout=dropout)
    for layer in gc.linears(net):
        layer.b[...] = rng.standard_normal(layer.b.shape) * 0.1
    x = rng.standard_normal((5, 6))
    R = rng.standard_normal((5, 3))

    def loss():
        reseed_dropouts(net)
        return float(np.sum(net.forward(x.copy(), train=True) * R))

    loss()
    dx = net.backward(R.copy()).copy()
    grads = net.flat_grads.copy()
    # a second backward must give the same gradients (overwritten, not accumulated)
    loss()
    net.backward(R.copy())
    np.testing.assert_array_equal(net.flat_grads, grads)
    err_p = gc.rel_error(grads, gc.fd_gradient(loss, net.flat_params))
    err_x = gc.rel_error(dx, gc.fd_gradient(loss, x))
    gc.measured("FD Sequential (mlp) params", err_p)
    gc.measured("FD Sequential (mlp) dx", err_x)
    assert err_p < TOL and err_x < TOL, (err_p, err_x)


def test_sequential_flat_views_and_backward_options():
    rng = np.random.default_rng(6)
    net = mlp((4, 3, 2), "relu", None, rng, dtype=F64)
    first, last = net.layers[0], net.layers[-1]
    assert np.shares_memory(first.W, net.flat_params) and np.shares_memory(last.db, net.flat_grads)
    assert net.num_params() == 4 * 3 + 3 + 3 * 2 + 2
    net.flat_params[0] = 42.0
    assert first.W[0, 0] == 42.0
    x, R = rng.standard_normal((3, 4)), rng.standard_normal((3, 2))
    net.forward(x.copy())
    net.flat_grads[...] = 7.0
    dx = net.backward(R.copy(), param_grads=False)
    assert dx.shape == (3, 4)
    assert np.all(net.flat_grads == 7.0)  # param_grads=False: untouched
    net.forward(x.copy())
    assert net.backward(R.copy(), input_grad=False) is None
    assert not np.all(net.flat_grads == 7.0)
    # __call__ returns a fresh array, not a buffer
    a = net(x)
    b = net(x + 1)
    assert not np.shares_memory(a, b)
    with pytest.raises(ValueError, match="one dtype"):
        Sequential([Linear(2, 2, rng, dtype=np.float32), Linear(2, 2, rng, dtype=np.float64)])


def test_mlp_init_scales():
    rng = np.random.default_rng(7)
    net = mlp((784, 512, 1), "leaky_relu", None, rng, leaky_slope=0.2)
    hidden, out = [layer for layer in net.layers if isinstance(layer, Linear)]
    # He init with the leaky-ReLU gain: std = sqrt(2 / (1 + 0.2²)) / sqrt(784)
    expected = np.sqrt(2 / 1.04) / np.sqrt(784)
    assert abs(hidden.W.std() / expected - 1) < 0.01
    # Xavier before the logit output: std = sqrt(2 / (512 + 1))
    assert abs(out.W.std() / np.sqrt(2 / 513) - 1) < 0.15
    assert hidden.W.dtype == np.float32


@pytest.mark.parametrize("hidden", ["tanh", "sigmoid"])
def test_mlp_tanh_or_sigmoid_with_dropout_gradients(gc, hidden):
    rng = np.random.default_rng(8)
    net = mlp((6, 5, 4, 3), hidden, None, rng, dtype=F64, dropout=0.3)
    x, R = rng.standard_normal((5, 6)), rng.standard_normal((5, 3))

    def loss():
        reseed_dropouts(net)
        return float(np.sum(net.forward(x.copy(), train=True) * R))

    loss()
    net.backward(R.copy())
    grads = net.flat_grads.copy()
    assert gc.rel_error(grads, gc.fd_gradient(loss, net.flat_params)) < TOL
