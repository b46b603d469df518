"""Conv2d, ConvTranspose2d and BatchNorm (npgan/conv.py) against central finite
differences in float64 and against PyTorch autograd on identical weights,
odd shapes included (5×7 inputs, stride 2, padding 1, non-square)."""

import numpy as np
import pytest

from npgan.batchnorm import BatchNorm
from npgan.conv import Conv2d, ConvTranspose2d, Flatten, Reshape
from npgan.layers import ReLU, Sequential

# (batch, c_in, height, width, c_out, kernel, stride, padding)
CONV_SHAPES = [
    (3, 2, 5, 7, 4, 3, 2, 1),   # odd, non-square, stride 2, padding 1
    (2, 3, 7, 7, 5, 4, 2, 1),   # the DCGAN's 4×4 stride-2 kernel
    (2, 1, 6, 5, 3, 4, 1, 0),   # stride 1, no padding
    (1, 2, 8, 6, 2, 2, 3, 2),   # stride larger than the kernel
]
LAYERS = {"Conv2d": Conv2d, "ConvTranspose2d": ConvTranspose2d}


def make_layer(name, shape, seed=0):
    B, C, H, W, Co, k, s, p = shape
    rng = np.random.default_rng(seed)
    layer = LAYERS[name](C, Co, k, s, p, rng=rng, dtype=np.float64)
    layer.b[...] = rng.normal(0, 0.5, Co)
    return layer, rng.normal(size=(B, C, H, W)), rng


def label(shape):
    B, C, H, W, Co, k, s, p = shape
    return f"{C}x{H}x{W}->{Co} k{k} s{s} p{p}"


@pytest.mark.parametrize("shape", CONV_SHAPES, ids=label)
@pytest.mark.parametrize("name", list(LAYERS))
def test_conv_gradients_match_finite_differences(gc, name, shape):
    layer, x, rng = make_layer(name, shape)
    weights = rng.normal(size=layer.forward(x).shape)   # L = Σ y ⊙ weights

    def loss():
        return float(np.sum(layer.forward(x) * weights))

    loss()
    dx = layer.backward(weights.copy()).copy()
    errors = {"x": gc.rel_error(dx, gc.fd_gradient(loss, x)),
              "W": gc.rel_error(layer.dW, gc.fd_gradient(loss, layer.W)),
              "b": gc.rel_error(layer.db, gc.fd_gradient(loss, layer.b))}
    for what, err in errors.items():
        gc.measured(f"FD {name} d{what}", err)
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("shape", CONV_SHAPES, ids=label)
@pytest.mark.parametrize("name", list(LAYERS))
def test_conv_matches_torch(gc, name, shape):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    F = torch.nn.functional
    B, C, H, W, Co, k, s, p = shape
    layer, x, rng = make_layer(name, shape)
    y = layer.forward(x).copy()
    xt, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, layer.W.copy(), layer.b.copy()))
    op = F.conv2d if name == "Conv2d" else F.conv_transpose2d
    yt = op(xt, Wt, bt, stride=s, padding=p)
    assert y.shape == tuple(yt.shape)
    g = rng.normal(size=y.shape)
    yt.backward(torch.tensor(g))
    dx = layer.backward(g.copy())
    errors = {"y": gc.rel_error(y, yt.detach().numpy()), "x": gc.rel_error(dx, xt.grad.numpy()),
              "W": gc.rel_error(layer.dW, Wt.grad.numpy()), "b": gc.rel_error(layer.db, bt.grad.numpy())}
    for what, err in errors.items():
        gc.measured(f"torch {name} {what if what == 'y' else 'd' + what}", err)
    assert max(errors.values()) < 1e-12, errors


# (batch, c_in, height, width, c_out, kernel, stride, padding, output_padding)
OUTPUT_PADDING_SHAPES = [
    (2, 3, 7, 7, 2, 5, 2, 2, 1),   # the DCGAN's 5×5 kernels: 7 → 14 (13 without output padding)
    (2, 2, 5, 4, 3, 3, 3, 0, 2),   # output padding beyond the padding: rows of bias alone
]


@pytest.mark.parametrize("shape", OUTPUT_PADDING_SHAPES, ids=str)
@pytest.mark.parametrize("batch_last", [False, True])
def test_transposed_conv_output_padding_matches_finite_differences_and_torch(gc, shape, batch_last):
    B, C, H, W, Co, k, s, p, q = shape
    rng = np.random.default_rng(5)
    layer = ConvTranspose2d(C, Co, k, s, p, rng=rng, dtype=np.float64, batch_last=batch_last,
                            output_padding=q)
    layer.b[...] = rng.normal(0, 0.5, Co)
    x = rng.normal(size=(B, C, H, W))
    as_layout = (lambda a: np.ascontiguousarray(a.transpose(1, 2, 3, 0))) if batch_last else np.array
    from_layout = (lambda a: a.transpose(3, 0, 1, 2)) if batch_last else np.array
    y = from_layout(layer.forward(as_layout(x))).copy()
    assert y.shape == (B, Co, (H - 1) * s - 2 * p + k + q, (W - 1) * s - 2 * p + k + q)
    g = rng.normal(size=y.shape)

    def loss():
        return float(np.sum(from_layout(layer.forward(as_layout(x))) * g))

    loss()
    dx = from_layout(layer.backward(as_layout(g))).copy()
    dW, db = layer.dW.copy(), layer.db.copy()
    fd = {"x": gc.rel_error(dx, gc.fd_gradient(loss, x)), "W": gc.rel_error(dW, gc.fd_gradient(loss, layer.W)),
          "b": gc.rel_error(db, gc.fd_gradient(loss, layer.b))}
    for what, err in fd.items():
        gc.measured(f"FD ConvTranspose2d output_padding d{what}", err)
    assert max(fd.values()) < 1e-7, fd
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    xt, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, layer.W.copy(), layer.b.copy()))
    yt = torch.nn.functional.conv_transpose2d(xt, Wt, bt, stride=s, padding=p, output_padding=q)
    yt.backward(torch.tensor(g))
    errors = {"y": gc.rel_error(y, yt.detach().numpy()), "x": gc.rel_error(dx, xt.grad.numpy()),
              "W": gc.rel_error(dW, Wt.grad.numpy()), "b": gc.rel_error(db, bt.grad.numpy())}
    for what, err in errors.items():
        gc.measured(f"torch ConvTranspose2d output_padding {what if what == 'y' else 'd' + what}", err)
    assert max(errors.values()) < 1e-12, errors


def test_transposed_conv_refuses_output_padding_of_a_whole_stride():
    with pytest.raises(ValueError, match="output_padding must be in"):
        ConvTranspose2d(2, 3, 5, 2, 2, output_padding=2)


def test_input_gradient_skipped_on_request():
    layer, x, rng = make_layer("Conv2d", CONV_SHAPES[0])
    g = rng.normal(size=layer.forward(x).shape)
    assert layer.backward(g, input_grad=False) is None
    assert np.any(layer.dW != 0)


BN_SHAPES = [(6, 3, 5, 7), (8, 5), (4, 2, 1, 3)]


def make_bn(shape, seed=0, group_size=None):
    rng = np.random.default_rng(seed)
    bn = BatchNorm(shape[1], dtype=np.float64, group_size=group_size)
    bn.gamma[...] = rng.normal(1, 0.5, shape[1])
    bn.beta[...] = rng.normal(0, 0.5, shape[1])
    return bn, rng.normal(size=shape) * 2 + 1, rng


@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
def test_batchnorm_gradients_match_finite_differences(gc, shape):
    bn, x, rng = make_bn(shape)
    weights = rng.normal(size=shape)

    def loss():
        return float(np.sum(bn.forward(x) * weights))

    loss()
    dx = bn.backward(weights.copy()).copy()
    errors = {"x": gc.rel_error(dx, gc.fd_gradient(loss, x)),
              "gamma": gc.rel_error(bn.dgamma, gc.fd_gradient(loss, bn.gamma)),
              "beta": gc.rel_error(bn.dbeta, gc.fd_gradient(loss, bn.beta))}
    for what, err in errors.items():
        gc.measured(f"FD BatchNorm d{what}", err)
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
def test_batchnorm_matches_torch_in_training_and_evaluation(gc, shape):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    F = torch.nn.functional
    bn, x, rng = make_bn(shape)
    C = shape[1]
    rm, rv = torch.zeros(C, dtype=torch.float64), torch.ones(C, dtype=torch.float64)
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, bn.gamma.copy(), bn.beta.copy()))
    worst = 0.0
    for step in range(3):          # three batches: the running statistics move
        x_step = x + step
        xt = torch.tensor(x_step, requires_grad=True)
        yt = F.batch_norm(xt, rm, rv, gt, bt, training=True, momentum=0.1, eps=1e-5)
        y = bn.forward(x_step).copy()
        g = rng.normal(size=shape)
        gt.grad = bt.grad = None
        yt.backward(torch.tensor(g))
        dx = bn.backward(g.copy())
        errs = [gc.rel_error(y, yt.detach().numpy()), gc.rel_error(dx, xt.grad.numpy()),
                gc.rel_error(bn.dgamma, gt.grad.numpy()), gc.rel_error(bn.dbeta, bt.grad.numpy()),
                gc.rel_error(bn.running_mean, rm.numpy()), gc.rel_error(bn.running_var, rv.numpy())]
        worst = max(worst, *errs)
    y_eval = bn.forward(x, train=False)
    y_eval_t = F.batch_norm(torch.tensor(x), rm, rv, gt.detach(), bt.detach(), training=False, eps=1e-5)
    err_eval = gc.rel_error(y_eval, y_eval_t.numpy())
    gc.measured("torch BatchNorm training (y, dx, dgamma, dbeta, running stats)", worst)
    gc.measured("torch BatchNorm evaluation y", err_eval)
    assert worst < 1e-12 and err_eval < 1e-12, (worst, err_eval)


def test_batchnorm_groups_normalise_each_half_alone():
    """group_size=B on a batch of 2B: the same as two separate batches of B."""
    bn2, x, rng = make_bn((8, 3, 4, 5), group_size=4)
    bn1, _, _ = make_bn((8, 3, 4, 5))
    y = bn2.forward(x).copy()
    top, bottom = bn1.forward(x[:4]).copy(), bn1.forward(x[4:]).copy()
    np.testing.assert_allclose(y, np.concatenate([top, bottom]), rtol=0, atol=1e-13)
    assert not np.allclose(y, make_bn((8, 3, 4, 5))[0].forward(x))   # one batch differs
    g = rng.normal(size=x.shape)
    dx = bn2.backward(g.copy()).copy()
    bn1.forward(x[:4])
    dx_top = bn1.backward(g[:4].copy()).copy()
    np.testing.assert_allclose(dx[:4], dx_top, rtol=0, atol=1e-13)
    # a batch of exactly one group (the G step's fakes) is an ordinary batch
    np.testing.assert_allclose(bn2.forward(x[:4]), top, rtol=0, atol=1e-13)


def test_sequential_keeps_running_statistics_in_flat_buffers():
    rng = np.random.default_rng(0)
    net = Sequential([Reshape(2, 3, 3), BatchNorm(2), ReLU(), Flatten()])
    bn = net.layers[1]
    assert net.num_params() == 4 and net.flat_buffers.size == 4
    assert np.shares_memory(bn.running_mean, net.flat_buffers)
    y = net.forward(rng.normal(3, 1, (5, 18)).astype(np.float32))
    assert y.shape == (5, 18)
    assert np.all(net.flat_buffers[:2] > 0.2)       # running mean moved towards 3
    assert net.backward(np.ones_like(y)).shape == (5, 18)


def test_upsample_matches_finite_differences_and_torch(gc):
    from npgan.conv import Upsample

    rng = np.random.default_rng(3)
    layer, x = Upsample(2), rng.normal(size=(2, 3, 5, 7))
    weights = rng.normal(size=(2, 3, 10, 14))

    def loss():
        return float(np.sum(layer.forward(x) * weights))

    loss()
    dx = layer.backward(weights.copy()).copy()
    err = gc.rel_error(dx, gc.fd_gradient(loss, x))
    gc.measured("FD Upsample dx", err)
    assert err < 1e-8
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.interpolate(xt, scale_factor=2, mode="nearest")
    yt.backward(torch.tensor(weights))
    np.testing.assert_array_equal(layer.forward(x), yt.detach().numpy())
    assert gc.rel_error(dx, xt.grad.numpy()) < 1e-13


# ---- batch_last: the same layers on (C, H, W, B) maps (what the DCGAN's networks use)

def to_batch_last(a):
    return np.ascontiguousarray(np.moveaxis(a, 0, -1))


def from_batch_last(a):
    return np.moveaxis(a, -1, 0)


def twin(layer_class, *args, **kwargs):
    """The same layer twice, NCHW and batch-last, with identical weights."""
    nchw, last = layer_class(*args, **kwargs), layer_class(*args, **kwargs, batch_last=True)
    for name in nchw.params:
        getattr(last, name)[...] = getattr(nchw, name)
    return nchw, last


def assert_same_in_both_layouts(nchw, last, x, rng, atol=0.0):
    """Forward and backward of the two twins on the same input, moved to the
    other layout: outputs, input gradients and parameter gradients agree."""
    y = nchw.forward(x.copy()).copy()
    y_last = last.forward(to_batch_last(x)).copy()
    np.testing.assert_allclose(from_batch_last(y_last), y, rtol=0, atol=atol)
    g = rng.normal(size=y.shape)
    dx = nchw.backward(g.copy()).copy()
    dx_last = last.backward(to_batch_last(g))
    np.testing.assert_allclose(from_batch_last(dx_last), dx, rtol=0, atol=atol)
    for name in nchw.params:
        np.testing.assert_allclose(getattr(last, "d" + name), getattr(nchw, "d" + name),
                                   rtol=0, atol=atol)


@pytest.mark.parametrize("shape", CONV_SHAPES, ids=label)
@pytest.mark.parametrize("name", list(LAYERS))
def test_conv_layers_agree_in_both_layouts(name, shape):
    B, C, H, W, Co, k, s, p = shape
    rng = np.random.default_rng(4)
    nchw, last = twin(LAYERS[name], C, Co, k, s, p, rng=rng, dtype=np.float64)
    nchw.b[...] = last.b[...] = rng.normal(0, 0.5, Co)
    # the same products on the same numbers (dL/db: a sum in another order)
    assert_same_in_both_layouts(nchw, last, rng.normal(size=(B, C, H, W)), rng, atol=1e-12)


@pytest.mark.parametrize("group_size", [None, 3])
def test_batchnorm_and_upsample_agree_in_both_layouts(group_size):
    from npgan.conv import Upsample

    rng = np.random.default_rng(6)
    nchw, last = twin(BatchNorm, 4, dtype=np.float64, group_size=group_size)
    nchw.gamma[...] = last.gamma[...] = rng.normal(1, 0.5, 4)
    x = rng.normal(size=(6, 4, 5, 3)) * 2 + 1
    assert_same_in_both_layouts(nchw, last, x, rng, atol=1e-13)    # sums in another order
    np.testing.assert_allclose(last.running_mean, nchw.running_mean, rtol=1e-13)
    np.testing.assert_allclose(last.running_var, nchw.running_var, rtol=1e-13)
    np.testing.assert_allclose(from_batch_last(last.forward(to_batch_last(x), train=False)),
                               nchw.forward(x, train=False), rtol=0, atol=1e-13)
    assert_same_in_both_layouts(*twin(Upsample, 2), rng.normal(size=(2, 3, 5, 7)), rng, atol=1e-13)


def test_reshape_and_flatten_move_between_rows_and_batch_last_maps():
    rng = np.random.default_rng(8)
    rows = rng.normal(size=(5, 2 * 3 * 4))
    to_maps, to_rows = Reshape(2, 3, 4, batch_last=True), Flatten(batch_last=True)
    maps = to_maps.forward(rows)
    np.testing.assert_array_equal(maps, to_batch_last(rows.reshape(5, 2, 3, 4)))
    np.testing.assert_array_equal(to_rows.forward(maps), rows)
    g = rng.normal(size=(5, 24))
    np.testing.assert_array_equal(to_maps.backward(to_rows.backward(g)), g)
