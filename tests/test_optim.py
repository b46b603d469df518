"""SGD and Adam against updates computed by hand from the textbook formulas."""

import numpy as np
import pytest

from npgan.optim import SGD, Adam, make_optimizer

P0 = np.array([1.0, -2.0, 0.5, 3.0, 0.0])
GRADS = [np.array([0.5, -1.0, 0.0, 2.0, 1e-3]),
         np.array([-0.25, -1.0, 0.1, 1.0, 0.0]),
         np.array([0.1, 0.5, -0.2, -3.0, 2e-3])]


def run(opt_class, dtype=np.float64, grads=GRADS, p0=P0, **kwargs):
    """Three steps; returns the parameter array (the same object throughout) after each."""
    params = p0.astype(dtype)
    g = np.zeros_like(params)
    opt = opt_class(params, g, **kwargs)
    history = []
    for grad in grads:
        g[...] = grad  # the optimizer keeps a reference to this gradient vector
        opt.step()
        assert opt.params is params  # updated in place, never rebound
        history.append(params.copy())
    return opt, params, history


def test_sgd_plain_three_steps():
    opt, params, history = run(SGD, lr=0.1)
    expected = P0.copy()
    for got, g in zip(history, GRADS):
        expected = expected - 0.1 * g  # θ ← θ - η g
        np.testing.assert_allclose(got, expected, rtol=1e-15, atol=1e-15)


def test_sgd_momentum_three_steps():
    lr, mu = 0.1, 0.9
    opt, params, history = run(SGD, lr=lr, momentum=mu)
    expected, v = P0.copy(), np.zeros_like(P0)
    for got, g in zip(history, GRADS):
        v = mu * v + g            # v ← μ v + g
        expected = expected - lr * v  # θ ← θ - η v
        np.testing.assert_allclose(got, expected, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(opt.state()["velocity"], v, rtol=1e-15)


def textbook_adam(p0, grads, lr, beta1, beta2, eps):
    """Kingma & Ba (2015), Algorithm 1, in float64."""
    theta = p0.astype(np.float64)
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    out = []
    for t, g in enumerate(grads, start=1):
        g = g.astype(np.float64)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append((theta.copy(), m.copy(), v.copy()))
    return out


@pytest.mark.parametrize("lr,beta1,beta2,eps", [(2e-4, 0.5, 0.999, 1e-8), (0.01, 0.9, 0.99, 1e-3)])
def test_adam_three_steps_float64(lr, beta1, beta2, eps):
    opt, params, history = run(Adam, lr=lr, beta1=beta1, beta2=beta2, eps=eps)
    expected = textbook_adam(P0, GRADS, lr, beta1, beta2, eps)
    for got, (theta, m, v) in zip(history, expected):
        np.testing.assert_allclose(got, theta, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(opt.m, expected[-1][1], rtol=1e-13, atol=1e-18)
    np.testing.assert_allclose(opt.v, expected[-1][2], rtol=1e-13, atol=1e-18)
    assert opt.t == 3 and int(opt.state()["t"]) == 3


def test_adam_float32_close_to_textbook():
    opt, params, history = run(Adam, dtype=np.float32, lr=1e-3)
    theta = textbook_adam(P0, GRADS, 1e-3, 0.5, 0.999, 1e-8)[-1][0]
    assert params.dtype == np.float32
    np.testing.assert_allclose(params, theta, rtol=1e-6, atol=1e-7)


def test_adam_large_vector():
    """Above 2^17 parameters the update may be split into parts: same result."""
    n = (1 << 17) + 12345
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(n)
    grads = [rng.standard_normal(n) * s for s in (1.0, 0.01, 3.0)]
    opt, params, history = run(Adam, grads=grads, p0=p0, lr=1e-3)
    for got, (theta, _, _) in zip(history, textbook_adam(p0, grads, 1e-3, 0.5, 0.999, 1e-8)):
        np.testing.assert_allclose(got, theta, rtol=1e-13, atol=1e-15)


def test_optimizers_update_network_views_in_place():
    from npgan.layers import mlp

    net = mlp((3, 2), "relu", None, np.random.default_rng(0), dtype=np.float64)
    W = net.layers[0].W
    before = W.copy()
    opt = make_optimizer("adam", net.flat_params, net.flat_grads, lr=0.1)
    net.flat_grads[...] = 1.0
    opt.step()
    np.testing.assert_allclose(W, before - 0.1 / (1 + 1e-8), rtol=1e-12)  # the layer sees the update
    assert isinstance(make_optimizer("sgd", net.flat_params, net.flat_grads, 0.1), SGD)
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer("rmsprop", net.flat_params, net.flat_grads, 0.1)


def test_adam_with_zero_learning_rate_changes_nothing():
    opt, params, history = run(Adam, lr=0.0)
    np.testing.assert_array_equal(params, P0)
