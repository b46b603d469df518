"""ProjectionLogit (projection.py) against central finite differences (float64)
and PyTorch autograd, and the CGAN whose D carries it."""

import json

import numpy as np
import pytest

from npgan import GANConfig, build, checkpoint, one_hot, train
from npgan.layers import Linear
from npgan.projection import ProjectionLogit


def random_layer(rng, n, f, k):
    layer = ProjectionLogit(Linear(f, 1, rng, "xavier", dtype=np.float64), k)
    layer.b[...] = rng.normal()
    layer.V[...] = rng.standard_normal(layer.V.shape)
    layer.onehot = one_hot(rng.integers(0, k, n), k, np.float64)
    return layer


def test_forward_is_the_class_weights_formula():
    rng = np.random.default_rng(0)
    layer = random_layer(rng, 7, 5, 3)
    x = rng.standard_normal((7, 5))
    labels = layer.onehot.argmax(axis=1)
    expected = [x[i] @ (layer.W[:, 0] + layer.V[labels[i]]) + layer.b[0] for i in range(7)]
    np.testing.assert_allclose(layer.forward(x)[:, 0], expected, rtol=1e-13)


@pytest.mark.parametrize("n, f, k", [(8, 5, 3), (5, 9, 10), (1, 4, 2)])
def test_gradients_match_finite_differences(gc, n, f, k):
    rng = np.random.default_rng(n + f + k)
    layer = random_layer(rng, n, f, k)
    x = rng.standard_normal((n, f))
    R = rng.standard_normal((n, 1))

    def loss():
        return float(np.sum(layer.forward(x) * R))

    loss()
    dx = layer.backward(R.copy()).copy()
    grads = {"x": dx, "W": layer.dW.copy(), "b": layer.db.copy(), "V": layer.dV.copy()}
    for name, value in (("x", x), ("W", layer.W), ("b", layer.b), ("V", layer.V)):
        err = gc.rel_error(grads[name], gc.fd_gradient(loss, value))
        gc.measured(f"FD layer ProjectionLogit d{name}", err)
        assert err < 1e-7, (name, err)


def test_against_torch(gc):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    layer = random_layer(rng, 12, 6, 10)
    x, R = rng.standard_normal((12, 6)), rng.standard_normal((12, 1))
    out = layer.forward(x).copy()
    dx = layer.backward(R.copy()).copy()
    xt = torch.tensor(x, requires_grad=True)
    W, b, V = (torch.tensor(a.copy(), requires_grad=True) for a in (layer.W, layer.b, layer.V))
    labels = torch.from_numpy(layer.onehot.argmax(axis=1))
    embed = torch.nn.functional.embedding(labels, V)            # v_y per row
    yt = xt @ W + b + (xt * embed).sum(dim=1, keepdim=True)
    (yt * torch.tensor(R)).sum().backward()
    np.testing.assert_allclose(out, yt.detach().numpy(), rtol=1e-12)
    for name, ours, theirs in (("x", dx, xt.grad), ("W", layer.dW, W.grad), ("b", layer.db, b.grad),
                               ("V", layer.dV, V.grad)):
        err = gc.rel_error(ours, theirs.numpy())
        gc.measured(f"torch ProjectionLogit d{name}", err)
        assert err < 1e-12, (name, err)


def test_labels_are_needed():
    rng = np.random.default_rng(0)
    layer = ProjectionLogit(Linear(4, 1, rng, "xavier"), 3)
    with pytest.raises(ValueError, match="set onehot"):
        layer.forward(np.zeros((2, 4), np.float32))
    layer.onehot = np.zeros((3, 3), np.float32)      # labels of another batch
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        layer.forward(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="one output"):
        ProjectionLogit(Linear(4, 2, rng), 3)


def test_a_plain_gan_has_no_label_to_project():
    with pytest.raises(ValueError, match="d_projection needs labels"):
        GANConfig(d_projection=True)
    with pytest.raises(TypeError, match="True or False"):
        GANConfig(n_classes=10, d_projection=1)


@pytest.mark.parametrize("batch_std", [0, 4])
def test_starts_as_the_cgan_and_learns_class_vectors(batch_std):
    """Before training, the projection D is the CGAN's D (V = 0, the same random
    numbers drawn); training moves V; the weight count includes V."""
    small = dict(n_classes=10, latent_dim=8, g_hidden=(16,), d_hidden=(32, 16), batch_size=8,
                 d_batch_std=batch_std)
    plain, projected = build(GANConfig(**small), seed=2), build(GANConfig(**small, d_projection=True), seed=2)
    config = projected.config
    assert config.num_parameters() == projected.G.num_params() + projected.D.num_params()
    assert config.num_parameters() == plain.config.num_parameters() + 10 * (16 + (batch_std > 0))
    rng = np.random.default_rng(0)
    x, labels = rng.uniform(-1, 1, (8, 784)).astype(np.float32), np.arange(8)
    np.testing.assert_array_equal(plain.discriminate(x, labels), projected.discriminate(x, labels))
    np.testing.assert_array_equal(plain.sample(8, np.random.default_rng(1)),
                                  projected.sample(8, np.random.default_rng(1)))
    images = rng.uniform(-1, 1, (32, 784)).astype(np.float32)
    train(projected, images, rng.integers(0, 10, 32), epochs=2, progress=False)
    V = projected.D.layers[-1].V
    assert (np.abs(V).max(axis=1) > 0).all()                # every class's vector moved
    # and D's judgement now goes through them
    with_v = projected.discriminate(x, labels)
    saved, V[...] = V.copy(), 0
    assert np.abs(projected.discriminate(x, labels) - with_v).max() > 1e-6
    V[...] = saved


def test_checkpoint_keeps_the_projection(tmp_path):
    config = GANConfig(n_classes=10, d_projection=True, latent_dim=8, g_hidden=(16,),
                       d_hidden=(32, 16), batch_size=8)
    model = build(config, seed=1)
    model.D.layers[-1].V[...] = np.random.default_rng(0).standard_normal((10, 17))
    checkpoint.save(model, tmp_path / "m.npz")
    loaded, _ = checkpoint.load(tmp_path / "m.npz")
    assert loaded.config.d_projection
    x = np.random.default_rng(0).uniform(-1, 1, (8, 784)).astype(np.float32)
    np.testing.assert_array_equal(model.discriminate(x, np.arange(8)), loaded.discriminate(x, np.arange(8)))


def test_older_configs_load_without_the_projection():
    data = json.loads(GANConfig(n_classes=10).to_json())
    del data["d_projection"]
    assert GANConfig.from_json(json.dumps(data)).d_projection is False
