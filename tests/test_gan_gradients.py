"""The D step and the G step of GAN.train_step against finite differences.

train_step is run as it is, with the two optimizers' step() wrapped to record
the flat gradients they receive (and the weights at that moment). The
gradients are then compared with finite differences of the losses written
independently here from the formulas (tests/conftest.py: ref_mlp, softplus):

    D loss = mean over the 2B rows of softplus(z) - y z,  y = real_label (real) or 0 (fake)
    G loss = -mean log D(G(z)) = mean softplus(-D_logit(G(z)))

where G's loss goes through the UPDATED D (train_step updates D first), with
the same noise, fake labels and dropout masks as train_step used. So the G
gradient checked here is the one that crosses D.
"""

import numpy as np
import pytest

from npgan import GANConfig, build, one_hot

TOL = 1e-6
B = 4


def tiny_config(**overrides):
    settings = dict(dtype="float64", latent_dim=5, g_hidden=(8, 4), d_hidden=(6, 4),
                    batch_size=B, real_label=0.9, d_dropout=0.0, d_batch_std=0)
    settings.update(overrides)
    return GANConfig(**settings)


CASES = {
    "GAN": dict(n_classes=0),
    "GAN dropout": dict(n_classes=0, d_dropout=0.3),
    "GAN relu uniform-noise sgd": dict(n_classes=0, activation="relu", noise="uniform",
                                       optimizer="sgd", momentum=0.9, real_label=1.0),
    "CGAN": dict(n_classes=10),
    "CGAN dropout": dict(n_classes=10, d_dropout=0.3),
    # D's last layer also reads its group's spread: groups of 2 (4 in the D step, 2 in the G step)
    "GAN batch std": dict(n_classes=0, d_batch_std=2),
    "CGAN batch std dropout": dict(n_classes=10, d_batch_std=4, d_dropout=0.3),
    # the label also picks D's last weights (projection.py)
    "CGAN projection": dict(n_classes=10, d_projection=True),
    "CGAN projection batch std dropout": dict(n_classes=10, d_projection=True, d_batch_std=2,
                                              d_dropout=0.3),
}


@pytest.mark.parametrize("case", list(CASES))
def test_train_step_gradients_match_finite_differences(gc, case):
    cfg = tiny_config(**CASES[case])
    model = build(cfg, seed=4)
    rng = np.random.default_rng(7)
    # non-zero biases: with zero biases a dead G makes constant fakes and D's
    # pre-activations sit right at the ReLU kink, where finite differences fail
    for layer in gc.linears(model.G) + gc.linears(model.D):
        layer.b[...] = rng.normal(0, 0.1, layer.b.shape)
    if cfg.d_projection:   # class vectors start at 0: make them matter
        head = model.D.layers[-1]
        head.V[...] = rng.normal(0, 0.5, head.V.shape)
    x_real = rng.uniform(-1, 1, (B, 784))
    labels = rng.integers(0, 10, B) if cfg.n_classes else None
    model.train_step(x_real, labels)  # one ordinary step first: Adam/momentum state, moved weights
    x_real = rng.uniform(-1, 1, (B, 784))
    labels = rng.integers(0, 10, B) if cfg.n_classes else None
    rec = gc.record_train_step(model, x_real, labels)
    k, L = cfg.n_classes, cfg.latent_dim
    slope, shapes_d, shapes_g = rec["slope"], rec["shapes_d"], rec["shapes_g"]
    d_in, g_in = rec["d_in"], rec["g_in"]

    # --- what train_step fed the networks
    np.testing.assert_array_equal(d_in[:B, :784], x_real)
    fakes = gc.ref_mlp(rec["thG0"], shapes_g, g_in, slope, "tanh")
    np.testing.assert_allclose(d_in[B:, :784], fakes, rtol=0, atol=1e-14)
    if k:
        np.testing.assert_array_equal(d_in[:B, 784:], one_hot(labels, k))
        fake_onehot = d_in[B:, 784:]
        np.testing.assert_array_equal(g_in[:, L:], fake_onehot)  # G and D saw the same fake label
        assert np.all(fake_onehot.sum(axis=1) == 1)
    if cfg.d_dropout:
        assert rec["masks_d"][0].shape == (2 * B, cfg.d_hidden[0])
        assert rec["masks_g"][0].shape == (B, cfg.d_hidden[0])

    # --- the order of the updates: D first, then G through the updated D
    assert not np.array_equal(rec["thD1"], rec["thD0"])
    np.testing.assert_array_equal(rec["thD_at_g"], rec["thD1"])
    np.testing.assert_array_equal(rec["thG_at_g"], rec["thG0"])
    # the G step leaves D alone: neither its weights nor its parameter gradients change
    np.testing.assert_array_equal(rec["thD_end"], rec["thD1"])
    np.testing.assert_array_equal(rec["gD_end"], rec["gD"])

    # --- D step
    targets = np.r_[np.full(B, cfg.real_label), np.zeros(B)][:, None]
    theta_d = rec["thD0"].copy()

    watch = gc.KinkWatch()

    proj_d = d_in[:, 784:] if cfg.d_projection else None   # the labels, for a projection D

    def d_loss():
        signs = []
        z = gc.ref_mlp(theta_d, shapes_d, d_in, slope, None, rec["masks_d"], signs, cfg.d_batch_std,
                       proj_d)
        watch.check(signs)
        return float(np.mean(gc.softplus(z) - targets * z))

    assert rec["losses"][0] == pytest.approx(d_loss(), rel=1e-12)
    err_d = gc.rel_error(rec["gD"], gc.fd_gradient(d_loss, theta_d))

    # --- G step, through the updated D, with the G step's own dropout masks
    theta_g = rec["thG0"].copy()
    theta_d1 = rec["thD1"]
    labels_part = d_in[B:, 784:]

    watch_g = gc.KinkWatch()

    def g_loss():
        signs = []
        fake = gc.ref_mlp(theta_g, shapes_g, g_in, slope, "tanh", None, signs)
        z = gc.ref_mlp(theta_d1, shapes_d, np.hstack([fake, labels_part]), slope, None,
                       rec["masks_g"], signs, cfg.d_batch_std, labels_part if cfg.d_projection else None)
        watch_g.check(signs)
        return float(np.mean(gc.softplus(-z)))

    assert rec["losses"][1] == pytest.approx(g_loss(), rel=1e-12)
    err_g = gc.rel_error(rec["gG"], gc.fd_gradient(g_loss, theta_g))
    # a unit crossing its kink invalidates the finite difference, not the code under test
    assert watch.crossings == watch_g.crossings == 0, \
        f"test set-up: {watch.crossings + watch_g.crossings} FD evaluations crossed a ReLU kink; change the seed"
    gc.measured(f"FD train_step D grads [{case}]", err_d)
    gc.measured(f"FD train_step G grads (through D) [{case}]", err_g)
    assert err_d < TOL and err_g < TOL, (err_d, err_g)


def test_d_outputs_reported_by_train_step(gc):
    """train_step's mean D(x) and mean D(G(z)) are D's probabilities in the D step."""
    cfg = tiny_config(n_classes=10)
    model = build(cfg, seed=5)
    rng = np.random.default_rng(1)
    x_real, labels = rng.uniform(-1, 1, (B, 784)), rng.integers(0, 10, B)
    rec = gc.record_train_step(model, x_real, labels)
    prob = 1 / (1 + np.exp(-gc.ref_mlp(rec["thD0"], rec["shapes_d"], rec["d_in"], rec["slope"])))
    _, _, d_real, d_fake = rec["losses"]
    assert d_real == pytest.approx(prob[:B].mean(), rel=1e-12)
    assert d_fake == pytest.approx(prob[B:].mean(), rel=1e-12)
