"""Spectral normalisation (npgan/spectral.py): the power iteration's σ against the
largest singular value, the hand-written gradient through W/σ(W) against finite
differences (u, v held fixed, as the layer treats them) and against PyTorch's own
torch.nn.utils.parametrizations.spectral_norm on the same weights, u and v;
u and v kept in the network's buffers and in its checkpoints."""

import numpy as np
import pytest

from npgan import DCGANConfig, build, checkpoint
from npgan.conv import Conv2d
from npgan.layers import Linear, ReLU, Sequential
from npgan.spectral import SpectralNorm

# a Conv2d (the DCGAN's 4×4 stride 2 and a 3×3 stride 1) and a Linear (n_in 12 → 5)
LAYERS = {"Conv2d 4x4 s2": lambda rng: Conv2d(3, 4, 4, 2, 1, rng=rng, dtype=np.float64),
          "Conv2d 3x3 s1": lambda rng: Conv2d(2, 5, 3, 1, 1, rng=rng, dtype=np.float64),
          "Linear": lambda rng: Linear(12, 5, rng, "he", dtype=np.float64)}
INPUTS = {"Conv2d 4x4 s2": (2, 3, 6, 6), "Conv2d 3x3 s1": (2, 2, 5, 4), "Linear": (3, 12)}


def wrapped(name, seed=0):
    rng = np.random.default_rng(seed)
    layer = SpectralNorm(LAYERS[name](rng), rng)
    layer.b[...] = rng.normal(0, 0.5, layer.b.shape)
    return layer, rng.normal(size=INPUTS[name]), rng


def matrix(name, W):
    return W.T if name == "Linear" else W.reshape(W.shape[0], -1)


@pytest.mark.parametrize("name", list(LAYERS))
def test_power_iteration_finds_the_largest_singular_value(name):
    layer, x, _ = wrapped(name)
    for _ in range(30):   # the 15 at the start and 30 training forwards
        layer.forward(x, train=True)
    largest = np.linalg.svd(matrix(name, layer.W), compute_uv=False)[0]
    assert layer.sigma == pytest.approx(largest, rel=1e-6)
    # the layer computes with W/σ: its own largest singular value is 1
    assert np.linalg.svd(matrix(name, layer.layer.W), compute_uv=False)[0] == pytest.approx(1, rel=1e-6)


@pytest.mark.parametrize("name", list(LAYERS))
def test_gradient_through_w_over_sigma_matches_finite_differences(gc, name):
    layer, x, rng = wrapped(name)
    layer.forward(x, train=True)        # one power step; from here u, v stay as they are
    u, v = layer.u.copy(), layer.v.copy()
    weights = rng.normal(size=layer.forward(x, train=False).shape)   # L = Σ y ⊙ weights

    def loss():
        return float(np.sum(layer.forward(x, train=False) * weights))

    loss()
    dx = layer.backward(weights.copy()).copy()
    errors = {"x": gc.rel_error(dx, gc.fd_gradient(loss, x)),
              "W": gc.rel_error(layer.dW, gc.fd_gradient(loss, layer.W)),
              "b": gc.rel_error(layer.db, gc.fd_gradient(loss, layer.b))}
    np.testing.assert_array_equal(layer.u, u)   # evaluation forwards leave u and v alone
    np.testing.assert_array_equal(layer.v, v)
    for what, err in errors.items():
        gc.measured(f"FD SpectralNorm {name} d{what}", err)
    assert max(errors.values()) < 1e-7, errors
    # not the plain layer's gradient: the σ term matters (a test that could not fail otherwise)
    assert gc.rel_error(layer.dW, layer.layer.dW / layer.sigma) > 1e-3


@pytest.mark.parametrize("name", list(LAYERS))
def test_matches_torch_spectral_norm(gc, name):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    from torch.nn.utils.parametrizations import spectral_norm
    layer, x, rng = wrapped(name)
    inner = layer.layer
    if name == "Linear":
        module = torch.nn.Linear(*layer.W.shape, dtype=torch.float64)
        weight = layer.W.T.copy()             # torch keeps (out, in)
    else:
        module = torch.nn.Conv2d(layer.W.shape[1], layer.W.shape[0], inner.k, inner.stride,
                                 inner.padding, dtype=torch.float64)
        weight = layer.W.copy()
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(weight))
        module.bias.copy_(torch.from_numpy(layer.b.copy()))
    module = spectral_norm(module)            # draws u, v of its own: ours replace them
    sn = module.parametrizations.weight[0]
    with torch.no_grad():
        sn._u.copy_(torch.from_numpy(layer.u.copy()))
        sn._v.copy_(torch.from_numpy(layer.v.copy()))
    errors = {}
    for step in range(3):   # three training forwards: u and v move the same way
        y = layer.forward(x, train=True).copy()
        xt = torch.tensor(x, requires_grad=True)
        module.zero_grad()
        yt = module(xt)
        g = rng.normal(size=y.shape)
        yt.backward(torch.tensor(g))
        dx = layer.backward(g.copy())
        dW_torch = module.parametrizations.weight.original.grad.numpy()
        step_errors = {"y": gc.rel_error(y, yt.detach().numpy()), "x": gc.rel_error(dx, xt.grad.numpy()),
                       "W": gc.rel_error(layer.dW, dW_torch.T if name == "Linear" else dW_torch),
                       "b": gc.rel_error(layer.db, module.bias.grad.numpy()),
                       "u": gc.rel_error(layer.u, sn._u.numpy()), "v": gc.rel_error(layer.v, sn._v.numpy())}
        for what, err in step_errors.items():
            errors[what] = max(err, errors.get(what, 0.0))
    for what, err in errors.items():
        gc.measured(f"torch SpectralNorm {name} {what if what in 'yuv' else 'd' + what}", err)
    assert max(errors.values()) < 1e-12, errors


def test_only_conv_and_linear_layers_are_wrapped():
    with pytest.raises(TypeError, match="Conv2d or a Linear"):
        SpectralNorm(ReLU(), np.random.default_rng(0))


def test_u_and_v_live_in_the_buffers_and_the_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    net = Sequential([SpectralNorm(Linear(6, 4, rng), rng)])
    layer = net.layers[0]
    assert np.shares_memory(layer.u, net.flat_buffers) and np.shares_memory(layer.v, net.flat_buffers)
    assert np.shares_memory(layer.W, net.flat_params) and np.shares_memory(layer.dW, net.flat_grads)
    # a DCGAN with spectral norm in D: trained a step, saved, loaded, the same u, v and scores
    model = build(DCGANConfig(g_channels=(4, 2), d_channels=(2, 4), batch_size=8, d_spectral_norm=True,
                              loss="hinge", d_batch_norm=False), seed=0)
    before = model.D.flat_buffers.copy()
    model.train_step(np.random.default_rng(1).uniform(-1, 1, (8, 784)).astype(np.float32))
    assert not np.array_equal(model.D.flat_buffers, before)   # the power steps moved u and v
    path = checkpoint.save(model, tmp_path / "sn.npz")
    loaded, _ = checkpoint.load(path)
    np.testing.assert_array_equal(loaded.D.flat_buffers, model.D.flat_buffers)
    x = np.random.default_rng(2).uniform(-1, 1, (8, 784)).astype(np.float32)
    np.testing.assert_array_equal(loaded.discriminate(x), model.discriminate(x))
