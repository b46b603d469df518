"""WGAN-GP (wgan.py): the gradient penalty's parameter gradient — the backward pass
of the backward pass, written by hand in layers.py — against PyTorch's
autograd.grad(create_graph=True) and against finite differences of a penalty
computed independently here from the formulas, in float64; then the step, the
config, the checkpoint, the CLI and the page exporter of the family."""

import numpy as np
import pytest

from npgan import WGAN, WGANConfig, build, checkpoint, export, models
from npgan.layers import mlp
from npgan.train import TrainingDiverged
from npgan.wgan import CriticWatch, critic_gradients, gradient_penalty, w1_estimate

BOOK_D = (784, 512, 256, 1)
TINY_D = (784, 6, 4, 1)
B = 8
LAMBDA = 10.0
TOL = 1e-6


def critic(sizes, activation="leaky_relu", seed=0):
    """An MLP critic in float64 with non-zero biases (with zero biases every unit
    of an all-zero input would sit on its kink)."""
    rng = np.random.default_rng(seed)
    D = mlp(sizes, activation, None, rng, dtype=np.float64)
    for layer in D.layers:
        if hasattr(layer, "b"):
            layer.b[...] = rng.normal(0, 0.1, layer.b.shape)
    return D


def inputs(seed=1, n=B):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, 784)), rng.uniform(-1, 1, (n, 784)), rng.random((n, 1))


def shapes_of(sizes):
    return list(zip(sizes[:-1], sizes[1:]))


# ---------------------------------------------------------------- independent references

def ref_scores_and_input_grad(theta, sizes, x, slope, gc, signs=None):
    """D(x) (N, 1) and ∇_x D(x) (N, 784) by the chain rule written out:
    v = (((1 · W_L^T) ⊙ φ'(a_{L−1})) W_{L−1}^T ⊙ …) W_1^T."""
    params = gc.unpack(theta, shapes_of(sizes))
    h, factors = x, []
    for i, (W, b) in enumerate(params):
        a = h @ W + b
        if i < len(params) - 1:
            if signs is not None:
                signs.append(a > 0)
            factors.append(np.where(a > 0, 1.0, slope))
            h = a * factors[-1]
        else:
            h = a
    g = np.ones((len(x), 1))
    for i in range(len(params) - 1, -1, -1):
        g = g @ params[i][0].T
        if i > 0:
            g = g * factors[i - 1]
    return h, g


def ref_penalty(theta, sizes, x_hat, slope, gc, signs=None):
    _, v = ref_scores_and_input_grad(theta, sizes, x_hat, slope, gc, signs)
    return LAMBDA * np.mean((np.linalg.norm(v, axis=1) - 1) ** 2)


def ref_critic_loss(theta, sizes, x_real, x_fake, eps, slope, gc, signs=None):
    scores, _ = ref_scores_and_input_grad(theta, sizes, np.vstack([x_real, x_fake]), slope, gc, signs)
    x_hat = x_fake + eps * (x_real - x_fake)
    return scores[B:].mean() - scores[:B].mean() + ref_penalty(theta, sizes, x_hat, slope, gc, signs)


def fd_at(f, theta, indices, watch, h=1e-5):
    """The fourth-order central difference of f() at the given flat indices of theta,
    and for each index whether one of its evaluations moved a unit across its kink
    (``watch``: a KinkWatch that f() feeds)."""
    out, crossed = np.empty(len(indices)), np.zeros(len(indices), bool)
    for k, i in enumerate(indices):
        old, values, before = theta[i], [], watch.crossings
        for step in (2 * h, h, -h, -2 * h):
            theta[i] = old + step
            values.append(f())
        theta[i] = old
        out[k] = (-values[0] + 8 * values[1] - 8 * values[2] + values[3]) / (12 * h)
        crossed[k] = watch.crossings > before
    return out, crossed


def slope_of(activation):
    return 0.2 if activation == "leaky_relu" else 0.0


# ---------------------------------------------------------------- against torch

def torch_gradients(theta, sizes, slope, x_real, x_fake, eps, penalty_only):
    """(loss, d loss/d theta) by PyTorch: the penalty through autograd.grad(create_graph=True)."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: pip install torch==2.13.0")
    F = torch.nn.functional
    t = torch.tensor(theta, requires_grad=True)
    params, start = [], 0
    for n_in, n_out in shapes_of(sizes):
        W = t[start:start + n_in * n_out].reshape(n_in, n_out)
        start += n_in * n_out
        params.append((W, t[start:start + n_out]))
        start += n_out

    def D(x):
        for i, (W, b) in enumerate(params):
            x = x @ W + b
            if i < len(params) - 1:
                x = F.leaky_relu(x, slope) if slope else F.relu(x)
        return x

    x_real, x_fake, eps = (torch.tensor(a) for a in (x_real, x_fake, eps))
    x_hat = (x_fake + eps * (x_real - x_fake)).requires_grad_(True)
    (v,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    loss = LAMBDA * ((v.norm(dim=1) - 1) ** 2).mean()
    if not penalty_only:
        loss = loss + D(x_fake).mean() - D(x_real).mean()
    (grad,) = torch.autograd.grad(loss, t)
    return loss.item(), grad.numpy()


@pytest.mark.parametrize("activation", ["leaky_relu", "relu"])
@pytest.mark.parametrize("penalty_only", [True, False], ids=["penalty", "critic loss"])
def test_gradients_match_torch_double_backward(gc, activation, penalty_only):
    """At the book's sizes (784 → 512 → 256 → 1): every one of the 533,505 partial derivatives."""
    D = critic(BOOK_D, activation)
    x_real, x_fake, eps = inputs()
    D.flat_grads[...] = 0
    if penalty_only:
        loss, _ = gradient_penalty(D, x_fake + eps * (x_real - x_fake), LAMBDA)
    else:
        loss, *_ = critic_gradients(D, x_real, x_fake, eps, LAMBDA)
    theirs_loss, theirs = torch_gradients(D.flat_params.copy(), BOOK_D, slope_of(activation),
                                          x_real, x_fake, eps, penalty_only)
    assert loss == pytest.approx(theirs_loss, rel=1e-12)
    err = gc.rel_error(D.flat_grads, theirs)
    gc.measured(f"WGAN-GP {'penalty' if penalty_only else 'critic loss'} vs torch [{activation}]", err)
    gc.measured("WGAN-GP vs torch, largest absolute", float(np.abs(D.flat_grads - theirs).max()))
    assert err < TOL, err
    assert np.abs(D.flat_grads).max() > 1e-3   # not a vacuous match of zeros


# ---------------------------------------------------------------- against finite differences

@pytest.mark.parametrize("activation", ["leaky_relu", "relu"])
def test_penalty_gradient_matches_finite_differences_tiny(gc, activation):
    """A tiny critic, every parameter; the penalty recomputed from the formulas."""
    D = critic(TINY_D, activation, seed=3)
    x_real, x_fake, eps = inputs(seed=4)
    x_hat = x_fake + eps * (x_real - x_fake)
    D.flat_grads[...] = 0
    penalty, _ = gradient_penalty(D, x_hat, LAMBDA)
    theta = D.flat_params.copy()
    watch = gc.KinkWatch()

    def f():
        signs = []
        value = ref_penalty(theta, TINY_D, x_hat, slope_of(activation), gc, signs)
        watch.check(signs)
        return value

    assert penalty == pytest.approx(f(), rel=1e-12)
    numeric = gc.fd_gradient(f, theta)
    assert watch.crossings == 0
    err = gc.rel_error(D.flat_grads, numeric)
    gc.measured(f"WGAN-GP penalty vs finite differences, tiny [{activation}]", err)
    assert err < TOL, err
    # b enters the input gradient only through the piecewise-constant factors: dP/db = 0
    biases = np.concatenate([layer.db for layer in gc.linears(D)])
    assert np.all(biases == 0) and np.abs(numeric[np.isin(theta, np.concatenate(
        [layer.b for layer in gc.linears(D)]))]).max() < 1e-8


@pytest.mark.parametrize("penalty_only", [True, False], ids=["penalty", "critic loss"])
def test_gradients_match_finite_differences_at_book_sizes(gc, penalty_only):
    """The book's critic: 400 weights drawn from all three layers, and 30 biases."""
    D = critic(BOOK_D, seed=5)
    x_real, x_fake, eps = inputs(seed=6)
    x_hat = x_fake + eps * (x_real - x_fake)
    D.flat_grads[...] = 0
    if penalty_only:
        gradient_penalty(D, x_hat, LAMBDA)
    else:
        critic_gradients(D, x_real, x_fake, eps, LAMBDA)
    theta = D.flat_params.copy()
    rng = np.random.default_rng(7)
    starts = np.cumsum([0] + [(n_in + 1) * n_out for n_in, n_out in shapes_of(BOOK_D)])
    picks = []
    for (n_in, n_out), start in zip(shapes_of(BOOK_D), starts):
        picks += list(start + rng.choice(n_in * n_out, min(150, n_in * n_out), replace=False))
        picks += list(start + n_in * n_out + rng.choice(n_out, min(10, n_out), replace=False))
    watch = gc.KinkWatch()

    def f():
        signs = []
        value = ref_penalty(theta, BOOK_D, x_hat, 0.2, gc, signs) if penalty_only else \
            ref_critic_loss(theta, BOOK_D, x_real, x_fake, eps, 0.2, gc, signs)
        watch.check(signs)
        return value

    f()   # the unperturbed sign pattern first
    numeric, crossed = fd_at(f, theta, picks, watch)
    assert crossed.sum() <= 3, crossed.sum()   # a difference across a kink is no derivative: dropped
    ours, numeric = D.flat_grads[picks][~crossed], numeric[~crossed]
    scale = np.abs(D.flat_grads).max()
    err = float(np.max(np.abs(ours - numeric) / np.maximum(np.maximum(np.abs(ours), np.abs(numeric)),
                                                           1e-3 * scale)))
    gc.measured(f"WGAN-GP {'penalty' if penalty_only else 'critic loss'} vs finite differences, "
                f"book sizes ({len(ours)} of {len(picks)} entries)", err)
    assert err < TOL, err


# ---------------------------------------------------------------- the step

def tiny_config(**overrides):
    settings = dict(dtype="float64", latent_dim=5, g_hidden=(8, 6), d_hidden=(6, 4), batch_size=B)
    settings.update(overrides)
    return WGANConfig(**settings)


def test_g_is_updated_after_every_n_critic_critic_steps():
    model = build(tiny_config(n_critic=3), seed=0)
    x = np.random.default_rng(0).uniform(-1, 1, (B, 784))
    for step in range(1, 8):
        g_before, d_before = model.G.flat_params.copy(), model.D.flat_params.copy()
        loss_d, loss_g, d_real, d_fake = model.train_step(x)
        assert not np.array_equal(model.D.flat_params, d_before)
        assert np.array_equal(model.G.flat_params, g_before) == (step % 3 != 0), step
        assert loss_d >= d_fake - d_real   # the penalty is never negative
    assert model.opt_d.t == 7 and model.opt_g.t == 2


def test_g_step_gradient_matches_torch(gc):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: pip install torch==2.13.0")
    cfg = tiny_config(n_critic=1)
    model = build(cfg, seed=2)
    seen = {}
    step_g = model.opt_g.step

    def record():
        seen.update(grads=model.G.flat_grads.copy(), G=model.G.flat_params.copy(),
                    D=model.D.flat_params.copy())
        step_g()

    model.opt_g.step = record
    _, loss_g, _, _ = model.train_step(np.random.default_rng(1).uniform(-1, 1, (B, 784)))
    (z,) = [v for (name, _, _), v in model._buffers.items() if name == "z"]
    g_sizes, d_sizes = (5, 8, 6, 784), (784, 6, 4, 1)
    tg, td = torch.tensor(seen["G"], requires_grad=True), torch.tensor(seen["D"])

    def net(t, sizes, x, out):
        start = 0
        for i, (n_in, n_out) in enumerate(shapes_of(sizes)):
            W = t[start:start + n_in * n_out].reshape(n_in, n_out)
            b = t[start + n_in * n_out:start + (n_in + 1) * n_out]
            start += (n_in + 1) * n_out
            x = x @ W + b
            x = torch.nn.functional.leaky_relu(x, 0.2) if i < len(sizes) - 2 else out(x)
        return x

    loss = -net(td, d_sizes, net(tg, g_sizes, torch.tensor(z), torch.tanh), lambda x: x).mean()
    loss.backward()
    assert loss_g == pytest.approx(loss.item(), rel=1e-12)
    err = gc.rel_error(seen["grads"], tg.grad.numpy())
    gc.measured("WGAN G step vs torch", err)
    assert err < 1e-10


def test_critic_watch_stops_a_blown_up_critic():
    watch = CriticWatch()
    watch.check(1, (-3.0, 100.0, 40.0, 37.0))   # levels drift freely; the estimate is what counts
    with pytest.raises(TrainingDiverged, match="W1 estimate is 1000"):
        watch.check(2, (-900.0, 0.0, 500.0, -500.0))


def test_w1_estimate_is_mean_real_minus_mean_fake_scores():
    model = build(tiny_config(), seed=0)
    real = np.random.default_rng(3).uniform(-1, 1, (50, 784))
    from npgan.metrics import draw_samples

    expected = model.discriminate(real).mean() - model.discriminate(draw_samples(model, 40, 1)).mean()
    assert w1_estimate(model, real, n=40, seed=1, batch_size=16) == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------- the family

def test_book_recipe_is_the_papers_with_two_measured_changes():
    paper = WGANConfig()
    assert (paper.gp_weight, paper.n_critic, paper.lr_d, paper.lr_g, paper.beta1, paper.beta2) == \
        (10.0, 5, 1e-4, 1e-4, 0.0, 0.9)
    c = models.book_config("wgan")
    assert type(c) is WGANConfig and models.BOOK_EPOCHS["wgan"] == 50
    assert (c.gp_weight, c.n_critic, c.lr_d, c.lr_g, c.beta1, c.beta2) == (10.0, 2, 2e-4, 2e-4, 0.0, 0.9)
    assert (c.d_dropout, c.d_batch_std, c.ema_decay, c.n_classes) == (0.0, 0, 0.0, 0)
    assert (c.g_hidden, c.d_hidden, c.latent_dim) == ((256, 512), (512, 256), 100)
    model = build(c)
    assert isinstance(model, WGAN) and model.sampler is model.G
    assert [type(layer).__name__ for layer in model.D.layers] == [
        "Linear", "LeakyReLU", "Linear", "LeakyReLU", "Linear"]


@pytest.mark.parametrize("field, value, message", [
    ("d_dropout", 0.3, "no dropout"), ("d_batch_std", 4, "no dropout and no batch spread"),
    ("n_classes", 10, "takes no labels"), ("n_critic", 0, "n_critic"), ("gp_weight", -1.0, "gp_weight")])
def test_config_refuses_what_the_critic_cannot_take(field, value, message):
    with pytest.raises(ValueError, match=message):
        WGANConfig(**{field: value})


def test_checkpoint_round_trip_and_export(tmp_path):
    model = build(tiny_config(latent_dim=100, g_hidden=(16, 16), dtype="float32"), seed=0)
    x = np.random.default_rng(0).uniform(-1, 1, (B, 784)).astype(np.float32)
    for _ in range(6):
        model.train_step(x)
    path = checkpoint.save(model, tmp_path / "w.npz", epoch=1, seed=0)
    loaded, meta = checkpoint.load(path)
    assert meta["model"] == "wgan" and isinstance(loaded, WGAN) and loaded.config == model.config
    np.testing.assert_array_equal(loaded.D.flat_params, model.D.flat_params)
    z = model.sample_noise(4, np.random.default_rng(1))
    np.testing.assert_array_equal(loaded.generate(z), model.generate(z))
    data = export.export_generator(loaded, source="runs/x/w.npz", epoch=1)
    assert data["name"] == "wgan" and [spec["type"] for spec in data["layers"]] == [
        "linear", "leaky_relu", "linear", "leaky_relu", "linear", "tanh"]


def test_cli_trains_and_samples_a_wgan(run_cli, train_one_epoch, tmp_path):
    run = train_one_epoch("wgan", subset=640, steps=10)
    model, meta = checkpoint.load(run / "checkpoint.npz")
    assert isinstance(model, WGAN) and model.opt_d.t == 10 and model.opt_g.t == 5   # the book: n_critic 2
    out = tmp_path / "s.npy"
    result = run_cli("sample", "--checkpoint", run / "checkpoint.npz", "--n", "20", "--out", out)
    assert result.returncode == 0, result.stderr
    assert np.load(out).shape == (20, 28, 28)
