"""Binary cross-entropy on logits: the closed form, its gradient, and the limits;
the hinge losses of D and G (Miyato et al. 2018)."""

import numpy as np
import pytest

from npgan.losses import bce_with_logits, hinge_d_loss, hinge_g_loss, sigmoid


def closed_form(z, y):
    """ℓ = -[y log a + (1 - y) log(1 - a)], a = 1 / (1 + e^(-z)), written naively."""
    a = 1 / (1 + np.exp(-z))
    return -(y * np.log(a) + (1 - y) * np.log(1 - a))


def test_bce_matches_closed_form_for_moderate_logits():
    rng = np.random.default_rng(0)
    z = rng.uniform(-8, 8, (50, 1))
    y = rng.choice([0.0, 0.3, 0.9, 1.0], size=(50, 1))
    loss, grad, prob = bce_with_logits(z, y)
    a = 1 / (1 + np.exp(-z))
    assert loss == pytest.approx(closed_form(z, y).mean(), rel=1e-12)
    np.testing.assert_allclose(prob, a, rtol=1e-12)
    np.testing.assert_allclose(grad, (a - y) / 50, rtol=1e-10, atol=1e-17)
    assert grad.shape == z.shape and grad.dtype == np.float64


def test_bce_gradient_matches_finite_differences(gc):
    rng = np.random.default_rng(1)
    z = rng.uniform(-6, 6, (8, 1))
    y = rng.choice([0.0, 0.9, 1.0], size=(8, 1))
    _, grad, _ = bce_with_logits(z, y)
    err = gc.rel_error(grad, gc.fd_gradient(lambda: bce_with_logits(z, y)[0], z))
    gc.measured("FD bce_with_logits dz", err)
    assert err < 1e-6


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("z,y,expected_loss,expected_grad", [
    (1e4, 0.0, 1e4, 1.0),    # confidently wrong: loss ≈ |z|, gradient a - y = 1
    (-1e4, 1.0, 1e4, -1.0),  # confidently wrong the other way
    (1e4, 1.0, 0.0, 0.0),    # confidently right: loss ≈ 0
    (-1e4, 0.0, 0.0, 0.0),
])
def test_bce_extreme_logits_are_finite_with_the_right_limits(dtype, z, y, expected_loss, expected_grad):
    logits = np.array([[z]], dtype=dtype)
    targets = np.array([[y]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no inf, no 0·inf, no log(0)
        loss, grad, prob = bce_with_logits(logits, targets)
    assert np.isfinite(loss) and np.all(np.isfinite(grad)) and np.all(np.isfinite(prob))
    assert loss == pytest.approx(expected_loss, rel=1e-6, abs=1e-6)
    assert grad[0, 0] == pytest.approx(expected_grad, abs=1e-6)
    assert grad.dtype == dtype


def test_bce_is_a_mean_over_the_batch():
    z = np.array([[0.5], [-2.0], [3.0], [0.0]])
    y = np.array([[1.0], [0.0], [0.0], [1.0]])
    loss, grad, _ = bce_with_logits(z, y)
    parts = [bce_with_logits(z[i:i + 1], y[i:i + 1]) for i in range(4)]
    assert loss == pytest.approx(np.mean([p[0] for p in parts]), rel=1e-14)
    np.testing.assert_allclose(grad[:, 0], [p[1][0, 0] / 4 for p in parts], rtol=1e-14)
    # at z = 0 the loss is log 2 whatever the label
    assert bce_with_logits(np.zeros((1, 1)), np.ones((1, 1)))[0] == pytest.approx(np.log(2))


def test_sigmoid_never_overflows():
    z = np.array([-1e4, -40.0, 0.0, 40.0, 1e4], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = sigmoid(z)
    np.testing.assert_allclose(s, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-7)
    np.testing.assert_allclose(sigmoid(np.array([2.0])), 1 / (1 + np.exp(-2.0)), rtol=1e-14)


def test_hinge_losses_match_their_formulas_and_finite_differences(gc):
    rng = np.random.default_rng(3)
    # scores away from the kinks at ±1 (finite differences need a smooth neighbourhood)
    z = rng.choice([-1, 1], size=(10, 1)) * rng.uniform(1.2, 3, (10, 1)) + rng.uniform(-0.7, 0.7, (10, 1))
    real, fake = z[:4], z[4:]   # 4 real rows, 6 fakes: the two means have their own sizes
    loss, grad, prob = hinge_d_loss(z, 4)
    assert loss == pytest.approx(np.maximum(1 - real, 0).mean() + np.maximum(1 + fake, 0).mean(), rel=1e-12)
    np.testing.assert_allclose(prob, sigmoid(z))
    err_d = gc.rel_error(grad, gc.fd_gradient(lambda: hinge_d_loss(z, 4)[0], z))
    loss_g, grad_g, _ = hinge_g_loss(fake)
    assert loss_g == pytest.approx(-fake.mean(), rel=1e-12)
    err_g = gc.rel_error(grad_g, gc.fd_gradient(lambda: hinge_g_loss(fake)[0], fake))
    gc.measured("FD hinge_d_loss dz", err_d)
    gc.measured("FD hinge_g_loss dz", err_g)
    assert err_d < 1e-8 and err_g < 1e-8
    # rows beyond their margin (reals above 1, fakes below −1) give no gradient
    assert np.all((grad[:4] == 0) == (real >= 1)) and np.all((grad[4:] == 0) == (fake <= -1))
    assert grad.dtype == z.dtype and hinge_d_loss(z.astype(np.float32), 4)[1].dtype == np.float32
