"""MinibatchStd (batchstd.py) against central finite differences (float64) and
PyTorch autograd, and the D that carries it."""

import numpy as np
import pytest

from npgan import GANConfig, build, train
from npgan.batchstd import MinibatchStd


def reference_forward(x, g, eps=1e-8):
    groups = x.reshape(-1, g, x.shape[1])
    sigma = np.sqrt(groups.var(axis=1) + eps)
    return np.hstack([x, np.repeat(sigma.mean(axis=1), g)[:, None]])


@pytest.mark.parametrize("n, f, g", [(8, 5, 4), (6, 3, 2), (9, 7, 9)])
def test_minibatch_std_forward_and_gradients(gc, n, f, g):
    rng = np.random.default_rng(n * f)
    layer = MinibatchStd(g)
    x = rng.standard_normal((n, f))
    R = rng.standard_normal((n, f + 1))

    def loss():
        return float(np.sum(layer.forward(x.copy()) * R))

    out = layer.forward(x.copy()).copy()
    np.testing.assert_allclose(out, reference_forward(x, g), rtol=1e-13)
    assert out[:, f].reshape(-1, g).std(axis=1).max() == 0   # one value per group
    dx = layer.backward(R.copy()).copy()
    err = gc.rel_error(dx, gc.fd_gradient(loss, x))
    gc.measured(f"FD layer MinibatchStd n={n} f={f} g={g}", err)
    assert err < 1e-6


def test_minibatch_std_against_torch(gc):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x, R = rng.standard_normal((16, 6)), rng.standard_normal((16, 7))
    layer = MinibatchStd(4)
    out = layer.forward(x.copy()).copy()
    dx = layer.backward(R.copy()).copy()
    xt = torch.tensor(x, requires_grad=True)
    groups = xt.reshape(4, 4, 6)
    sigma = torch.sqrt(groups.var(dim=1, unbiased=False) + 1e-8).mean(dim=1)
    yt = torch.cat([xt, sigma.repeat_interleave(4)[:, None]], dim=1)
    (yt * torch.tensor(R)).sum().backward()
    np.testing.assert_allclose(out, yt.detach().numpy(), rtol=1e-12)
    err = gc.rel_error(dx, xt.grad.numpy())
    gc.measured("torch MinibatchStd dx", err)
    assert err < 1e-12


def test_groups_never_mix_rows_of_other_groups():
    """Changing the rows of one group leaves the other groups' spread alone: the
    D step's reals (top half) and fakes (bottom half) are judged apart."""
    rng = np.random.default_rng(0)
    layer = MinibatchStd(4)
    x = rng.standard_normal((8, 3))
    before = layer.forward(x.copy())[:, 3].copy()
    x[4:] *= 10
    after = layer.forward(x.copy())[:, 3]
    np.testing.assert_array_equal(before[:4], after[:4])
    assert np.all(after[4:] > 5 * before[4:])


def test_bad_group_sizes_are_refused():
    with pytest.raises(ValueError, match="at least 2"):
        MinibatchStd(1)
    with pytest.raises(ValueError, match="groups of 4"):
        MinibatchStd(4).forward(np.zeros((6, 3)))
    with pytest.raises(ValueError, match="d_batch_std"):
        GANConfig(d_batch_std=5)          # 64 rows do not split into fives
    with pytest.raises(ValueError, match="d_batch_std"):
        GANConfig(d_batch_std=1)


@pytest.mark.parametrize("n_classes", [0, 10])
def test_gan_with_batch_std_trains_and_counts_its_weights(n_classes):
    config = GANConfig(n_classes=n_classes, d_batch_std=4, latent_dim=8, g_hidden=(16,),
                       d_hidden=(32, 16), batch_size=8)
    model = build(config, seed=0)
    assert config.num_parameters() == model.G.num_params() + model.D.num_params()
    assert [type(layer).__name__ for layer in model.D.layers][-2:] == ["MinibatchStd", "Linear"]
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (32, 784)).astype(np.float32)
    labels = rng.integers(0, 10, 32) if n_classes else None
    before = model.D.flat_params.copy()
    history = train(model, images, labels, epochs=2, progress=False)
    assert len(history.records) == 8 and np.isfinite(history.column("d_loss")).all()
    assert not np.array_equal(before, model.D.flat_params)


def test_checkpoint_keeps_the_batch_std_discriminator(tmp_path):
    from npgan import checkpoint

    config = GANConfig(d_batch_std=4, latent_dim=8, g_hidden=(16,), d_hidden=(32, 16), batch_size=8)
    model = build(config, seed=1)
    checkpoint.save(model, tmp_path / "m.npz")
    loaded, _ = checkpoint.load(tmp_path / "m.npz")
    assert loaded.config.d_batch_std == 4
    x = np.random.default_rng(0).uniform(-1, 1, (8, 784)).astype(np.float32)
    np.testing.assert_array_equal(model.D(x), loaded.D(x))


def test_infogan_refuses_the_batch_spread_and_the_conv_d_reads_it_last():
    from npgan import DCGANConfig, InfoGANConfig

    assert DCGANConfig().d_batch_std == 0 and InfoGANConfig().d_batch_std == 0
    with pytest.raises(ValueError, match="d_batch_std=0"):
        build(InfoGANConfig(d_batch_std=4))
    # the DCGAN's D: the spread of its flattened 7×7 maps, just before its last Linear
    *_, spread, last = build(DCGANConfig(d_batch_std=4)).D.layers
    assert isinstance(spread, MinibatchStd) and spread.group_size == 4
    assert last.W.shape == (64 * 49 + 1, 1)


def test_older_checkpoints_load_without_the_batch_spread():
    """A config written before batchstd.py has no d_batch_std: it had no such layer."""
    import json

    data = json.loads(GANConfig().to_json())
    del data["d_batch_std"]
    assert GANConfig.from_json(json.dumps(data)).d_batch_std == 0
    assert GANConfig().d_batch_std == 4                   # the book's recipe has it
