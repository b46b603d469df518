"""The DCGAN (npgan/dcgan.py): its D step and G step against finite differences
(float64, a tiny config) and against PyTorch autograd on identical weights,
written here layer by layer with torch.nn.functional; evaluation-mode
generation with BatchNorm's running statistics; checkpoints."""

import json

import numpy as np
import pytest

from npgan import DCGAN, DCGANConfig, book_config, build, checkpoint
from npgan.batchnorm import BatchNorm
from npgan.conv import Conv2d, ConvTranspose2d, Flatten, Reshape, Upsample
from npgan.batchstd import MinibatchStd
from npgan.layers import Dropout, LeakyReLU, Linear, ReLU, Tanh
from npgan.spectral import SpectralNorm

B = 3


def tiny(**overrides):
    settings = dict(dtype="float64", latent_dim=4, g_channels=(3, 2), d_channels=(2, 3),
                    batch_size=B, real_label=0.9)
    settings.update(overrides)
    return DCGANConfig(**settings)


def signs_of(*nets):
    """Which side of its kink every ReLU/LeakyReLU unit is on (after a forward pass)."""
    return [layer.y > 0 for net in nets for layer in net.layers
            if isinstance(layer, (ReLU, LeakyReLU))]


def prepared(cfg, seed=4):
    """A model after one ordinary step (Adam state, moved weights, BN running stats),
    with non-zero biases, and the record of a second step."""
    model = build(cfg, seed=seed)
    assert isinstance(model, DCGAN)
    rng = np.random.default_rng(7)
    for net in (model.G, model.D):
        for layer in net.layers:
            if isinstance(layer, (Linear, Conv2d, ConvTranspose2d)):
                layer.b[...] = rng.normal(0, 0.1, layer.b.shape)
    model.train_step(rng.uniform(-1, 1, (B, 784)))
    return model, rng


def softplus(z):
    return np.logaddexp(0.0, z)


CASES = {"BN separate": {}, "BN mixed": dict(d_bn_batches="mixed"),
         "no BN": dict(batch_norm=False, d_batch_norm=False),
         "resize-conv G, no BN in D": dict(g_upsample="resize", d_batch_norm=False),
         # the batch spread (batchstd.py) before D's last Linear: one group of B in the
         # G step, two (reals, fakes) in the D step
         "batch std, no BN in D": dict(d_batch_norm=False, d_batch_std=B),
         # a third conv in D, 7×7 → 3×3, with BN after the second and the third
         "three convs in D": dict(d_channels=(2, 3, 4)),
         # a hidden Linear (LeakyReLU) between D's last conv and its logit
         "hidden Linear in D": dict(d_channels=(2, 3, 4), d_fc=(5,), d_batch_norm=False)}
SEEDS = {"no BN": 9, "batch std, no BN in D": 3, "three convs in D": 12,
         "hidden Linear in D": 6}   # seeds whose finite differences cross no ReLU kink


@pytest.mark.parametrize("case", list(CASES))
def test_dcgan_train_step_gradients_match_finite_differences(gc, case):
    cfg = tiny(**CASES[case])
    model, rng = prepared(cfg, seed=SEEDS.get(case, 4))
    x_real = rng.uniform(-1, 1, (B, 784))
    rec = gc.record_train_step(model, x_real)
    d_in, g_in = rec["d_in"], rec["g_in"]
    np.testing.assert_array_equal(d_in[:B], x_real)
    np.testing.assert_array_equal(rec["thD_at_g"], rec["thD1"])
    np.testing.assert_array_equal(rec["thD_end"], rec["thD1"])   # the G step leaves D alone

    # --- D step: the loss as a function of D's weights (npgan's forward pass,
    # which test_conv.py checks against torch), at the weights before the update
    targets = np.r_[np.full(B, cfg.real_label), np.zeros(B)][:, None]
    D, G = model.D, model.G
    D.flat_params[...] = rec["thD0"]
    watch = gc.KinkWatch()

    def d_loss():
        z = D.forward(d_in)
        watch.check(signs_of(D))
        return float(np.mean(softplus(z) - targets * z))

    assert rec["losses"][0] == pytest.approx(d_loss(), rel=1e-12)
    err_d = gc.rel_error(rec["gD"], gc.fd_gradient(d_loss, D.flat_params))

    # --- G step: through the UPDATED D, fakes alone in D's batch
    D.flat_params[...] = rec["thD1"]
    G.flat_params[...] = rec["thG0"]
    watch_g = gc.KinkWatch()

    def g_loss():
        z = D.forward(G.forward(g_in))
        watch_g.check(signs_of(G, D))
        return float(np.mean(softplus(-z)))

    assert rec["losses"][1] == pytest.approx(g_loss(), rel=1e-12)
    err_g = gc.rel_error(rec["gG"], gc.fd_gradient(g_loss, G.flat_params))
    assert watch.crossings == watch_g.crossings == 0, "a ReLU kink was crossed: change the seed"
    gc.measured(f"FD DCGAN train_step D grads [{case}]", err_d)
    gc.measured(f"FD DCGAN train_step G grads (through D) [{case}]", err_g)
    assert err_d < 1e-6 and err_g < 1e-6, (err_d, err_g)


# ---------------------------------------------------------------- PyTorch twin

def torch_params(net, theta, torch):
    """Leaf tensors for every parameter of ``net``, cut from the flat vector theta
    in Sequential's order."""
    out, start = [], 0
    for layer in net.layers:
        tensors = []
        for name in layer.params:
            shape = getattr(layer, name).shape
            size = int(np.prod(shape))
            tensors.append(torch.tensor(theta[start:start + size].reshape(shape).copy(),
                                        requires_grad=True))
            start += size
        out.append(tensors)
    assert start == theta.size
    return out


def torch_forward(net, params, x, torch, train=True, groups=1, sn_state=None):
    """The same network in torch.nn.functional, layer by layer. ``groups``: D's
    batch normalised in that many equal parts, each on its own (separate batches).
    Dropout applies the mask npgan drew for a batch of this size. ``sn_state``:
    {id(layer): (u, v)} of the spectral-norm layers, moved one power step here."""
    F = torch.nn.functional
    for layer, p in zip(net.layers, params):
        if isinstance(layer, Dropout):
            batch_last = x.ndim == 4 and getattr(net.layers[0], "batch_last", False)
            shape = tuple(x.shape[1:] + x.shape[:1]) if batch_last else tuple(x.shape)
            mask = layer._buffers[("mask", shape, np.dtype(np.float64))]   # npgan's (C, H, W, B)
            x = x * torch.from_numpy(np.moveaxis(mask, -1, 0).copy() if batch_last else mask.copy())
            continue
        if isinstance(layer, Linear):
            x = x @ p[0] + p[1]
        elif isinstance(layer, Flatten):
            x = x.reshape(x.shape[0], -1)
        elif isinstance(layer, Reshape):
            x = x.reshape(x.shape[0], *layer.shape)
        elif isinstance(layer, SpectralNorm):   # spectral.py: u, v moved one power step, then W/σ
            u, v = (torch.from_numpy(a) for a in sn_state[id(layer)])
            with torch.no_grad():
                M = (p[0].T if isinstance(layer.layer, Linear) else p[0].reshape(p[0].shape[0], -1))
                u = F.normalize(M @ v, dim=0, eps=1e-12)
                v = F.normalize(M.T @ u, dim=0, eps=1e-12)
            sn_state[id(layer)] = (u.numpy(), v.numpy())
            W = p[0] / torch.dot(u, (p[0].T if isinstance(layer.layer, Linear)
                                     else p[0].reshape(p[0].shape[0], -1)) @ v)
            inner = layer.layer
            x = (x @ W + p[1] if isinstance(inner, Linear)
                 else F.conv2d(x, W, p[1], stride=inner.stride, padding=inner.padding))
        elif isinstance(layer, Conv2d):
            x = F.conv2d(x, p[0], p[1], stride=layer.stride, padding=layer.padding)
        elif isinstance(layer, Upsample):
            x = F.interpolate(x, scale_factor=layer.factor, mode="nearest")
        elif isinstance(layer, ConvTranspose2d):
            x = F.conv_transpose2d(x, p[0], p[1], stride=layer.stride, padding=layer.padding,
                                   output_padding=layer.output_padding)
        elif isinstance(layer, BatchNorm):
            if train:
                x = torch.cat([F.batch_norm(part, None, None, p[0], p[1], training=True, eps=layer.eps)
                               for part in x.chunk(groups)])
            else:
                x = F.batch_norm(x, torch.tensor(layer.running_mean), torch.tensor(layer.running_var),
                                 p[0], p[1], training=False, eps=layer.eps)
        elif isinstance(layer, LeakyReLU):
            x = F.leaky_relu(x, layer.slope)
        elif isinstance(layer, ReLU):
            x = F.relu(x)
        elif isinstance(layer, Tanh):
            x = torch.tanh(x)
        elif isinstance(layer, MinibatchStd):   # batchstd.py: each group's mean σ as one more column
            g = layer.group_size
            groups = x.reshape(x.shape[0] // g, g, -1)
            sigma = torch.sqrt(groups.var(dim=1, unbiased=False) + layer.eps).mean(dim=1)
            x = torch.cat([x, sigma.repeat_interleave(g)[:, None]], dim=1)
        else:
            raise TypeError(type(layer).__name__)
    return x


def flat_grad(params, torch):
    return torch.cat([t.grad.reshape(-1) for layer in params for t in layer]).numpy()


TORCH_CASES = {**CASES, "resize-conv G, no BN in D, dropout": dict(
    g_upsample="resize", d_batch_norm=False, d_dropout=0.3),
    "batch std 4, dropout": dict(d_batch_norm=False, d_dropout=0.3, d_batch_std=4),
    "three convs in D, dropout": dict(d_channels=(4, 6, 8), d_batch_norm=False, d_dropout=0.3),
    "hidden Linear in D, dropout": dict(d_channels=(4, 6, 8), d_fc=(7,), d_batch_norm=False,
                                        d_dropout=0.3),
    "book recipe": {k: v for k, v in vars(book_config("dcgan")).items() if k != "batch_size"},
    # the appendix's levers (each on the book's recipe there)
    "5x5 kernels, three convs in D": dict(kernel_size=5, d_channels=(4, 6, 8)),
    "wide 7x7 maps out of G's Linear": dict(g_linear_channels=6, d_channels=(4, 6, 8)),
    "stride-1 conv at 7x7 in D, dropout": dict(d_stride1_conv=True, d_channels=(4, 6, 8), d_dropout=0.3),
    "hinge loss, spectral norm in D, dropout": dict(loss="hinge", d_spectral_norm=True, d_channels=(4, 6, 8),
                                                    d_fc=(7,), d_batch_norm=False, d_dropout=0.3)}


@pytest.mark.parametrize("case", ["BN separate", "BN mixed", "resize-conv G, no BN in D, dropout",
                                  "batch std 4, dropout", "three convs in D, dropout",
                                  "hidden Linear in D, dropout", "book recipe",
                                  "5x5 kernels, three convs in D", "wide 7x7 maps out of G's Linear",
                                  "stride-1 conv at 7x7 in D, dropout",
                                  "hinge loss, spectral norm in D, dropout"])
def test_dcgan_train_step_matches_torch(gc, case):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    F = torch.nn.functional
    n = 16
    cfg = DCGANConfig(**{**TORCH_CASES[case], "dtype": "float64", "batch_size": n})
    model = build(cfg, seed=1)
    rng = np.random.default_rng(2)
    model.train_step(rng.uniform(-1, 1, (n, 784)))
    x_real = rng.uniform(-1, 1, (n, 784))
    sn_layers = [layer for layer in model.D.layers if isinstance(layer, SpectralNorm)]
    sn_state = {id(layer): (layer.u.copy(), layer.v.copy()) for layer in sn_layers}   # before the step
    rec = gc.record_train_step(model, x_real)
    groups = 2 if cfg.d_bn_batches == "separate" else 1
    if cfg.loss == "hinge":
        def d_loss(scores):   # Miyato et al.'s hinge loss, written again in torch
            return F.relu(1 - scores[:n]).mean() + F.relu(1 + scores[n:]).mean()

        def g_loss(scores):
            return -scores.mean()
    else:
        def d_loss(scores):
            targets = torch.cat([torch.full((n, 1), cfg.real_label, dtype=torch.float64),
                                 torch.zeros(n, 1, dtype=torch.float64)])
            return F.binary_cross_entropy_with_logits(scores, targets)

        def g_loss(scores):
            return F.binary_cross_entropy_with_logits(scores, torch.ones(n, 1, dtype=torch.float64))

    pg = torch_params(model.G, rec["thG0"], torch)
    fake = torch_forward(model.G, pg, torch.from_numpy(rec["g_in"]), torch)
    np.testing.assert_allclose(rec["d_in"][n:], fake.detach().numpy(), rtol=0, atol=1e-12)
    pd = torch_params(model.D, rec["thD0"], torch)
    d_in = torch.cat([torch.from_numpy(x_real), fake.detach()])
    loss_d = d_loss(torch_forward(model.D, pd, d_in, torch, groups=groups, sn_state=sn_state))
    loss_d.backward()
    pd1 = torch_params(model.D, rec["thD1"], torch)
    loss_g = g_loss(torch_forward(model.D, pd1, fake, torch, sn_state=sn_state))
    loss_g.backward()
    for layer in sn_layers:   # u and v after the D step's and the G step's power steps
        np.testing.assert_allclose(layer.u, sn_state[id(layer)][0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(layer.v, sn_state[id(layer)][1], rtol=0, atol=1e-12)
    assert rec["losses"][0] == pytest.approx(loss_d.item(), rel=1e-12)
    assert rec["losses"][1] == pytest.approx(loss_g.item(), rel=1e-12)
    err_d = gc.rel_error(rec["gD"], flat_grad(pd, torch))
    err_g = gc.rel_error(rec["gG"], flat_grad(pg, torch))
    gc.measured(f"torch DCGAN D grads [{case}]", err_d)
    gc.measured(f"torch DCGAN G grads [{case}]", err_g)
    assert err_d < 1e-10 and err_g < 1e-10, (err_d, err_g)


def test_generation_uses_running_statistics(gc):
    """G(z) with train=False: BatchNorm with its running mean and variance, as torch's
    eval mode; it differs from the batch-statistics output of the same z."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    model = build(DCGANConfig(dtype="float64", batch_size=8), seed=3)
    rng = np.random.default_rng(0)
    for _ in range(3):
        model.train_step(rng.uniform(-1, 1, (8, 784)))
    bn = [layer for layer in model.G.layers if isinstance(layer, BatchNorm)]
    assert all(np.any(layer.running_var != 1) for layer in bn)
    z = model.sample_noise(5, np.random.default_rng(1))
    images = model.generate(z)
    assert images.shape == (5, 784) and np.abs(images).max() <= 1
    expected = torch_forward(model.G, torch_params(model.G, model.G.flat_params, torch),
                             torch.from_numpy(z), torch, train=False).detach().numpy()
    err = gc.rel_error(images, expected)
    gc.measured("torch DCGAN eval-mode G(z)", err)
    assert err < 1e-12
    assert not np.allclose(images, model.G.forward(z, train=True))
    # evaluation leaves the running statistics alone
    before = model.G.flat_buffers.copy()
    model.generate(z)
    np.testing.assert_array_equal(model.G.flat_buffers, before)


def test_checkpoint_round_trip_keeps_running_statistics(tmp_path):
    model = build(tiny(dtype="float32"), seed=0)
    rng = np.random.default_rng(0)
    model.train_step(rng.uniform(-1, 1, (B, 784)).astype(np.float32))
    path = checkpoint.save(model, tmp_path / "dcgan.npz", epoch=1, seed=0)
    loaded, meta = checkpoint.load(path)
    assert isinstance(loaded, DCGAN) and meta["model"] == "dcgan"
    assert loaded.config == model.config
    np.testing.assert_array_equal(loaded.G.flat_buffers, model.G.flat_buffers)
    np.testing.assert_array_equal(loaded.D.flat_buffers, model.D.flat_buffers)
    z = model.sample_noise(4, np.random.default_rng(5))
    np.testing.assert_array_equal(loaded.generate(z), model.generate(z))


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="d_bn_batches"):
        DCGAN(DCGANConfig(d_bn_batches="both"))
    with pytest.raises(ValueError, match="g_upsample"):
        DCGAN(DCGANConfig(g_upsample="bilinear"))
    with pytest.raises(ValueError, match="two widths"):
        DCGAN(DCGANConfig(g_channels=(8,)))
    with pytest.raises(ValueError, match="unconditional"):
        DCGAN(DCGANConfig(n_classes=10))
    with pytest.raises(ValueError, match="d_batch_std must be"):
        DCGAN(DCGANConfig(d_batch_std=5))   # does not divide the batch of 64
    with pytest.raises(ValueError, match=r"kernel_size must be a whole number in \[4, 5\], got 3"):
        DCGANConfig(kernel_size=3)
    with pytest.raises(ValueError, match="g_linear_channels"):
        DCGANConfig(g_linear_channels=-1)
    with pytest.raises(TypeError, match="d_stride1_conv must be True or False"):
        DCGANConfig(d_stride1_conv=1)
    with pytest.raises(TypeError, match="d_spectral_norm must be True or False"):
        DCGANConfig(d_spectral_norm="yes")
    with pytest.raises(ValueError, match="loss must be one of 'bce', 'hinge'"):
        DCGANConfig(loss="wasserstein")
    assert DCGANConfig.from_json(DCGANConfig().to_json()) == DCGANConfig()
    # a config file from before the levers' fields reads as the recipe it was
    old = {k: v for k, v in json.loads(book_config("dcgan").to_json()).items()
           if k not in ("kernel_size", "g_linear_channels", "d_stride1_conv", "d_spectral_norm", "loss")}
    assert DCGANConfig.from_json(json.dumps(old)) == book_config("dcgan")


# ---------------------------------------------------------------- command line

def test_cli_trains_and_samples_a_dcgan(run_cli, tmp_path, mnist_dir):
    run = run_cli("train", "--model", "dcgan", "--epochs", "1", "--subset", "128",
                  "--out", tmp_path / "run", "--quiet")
    assert run.returncode == 0, run.stderr
    assert "trained DCGAN for 1 epochs" in run.stdout
    model, meta = checkpoint.load(tmp_path / "run" / "checkpoint.npz")
    assert isinstance(model, DCGAN) and model.config.dataset == "mnist" and meta["epoch"] == 1
    assert model.G.flat_buffers.size and np.any(model.G.flat_buffers[:model.config.g_channels[0]] != 0)
    run = run_cli("sample", "--checkpoint", tmp_path / "run" / "checkpoint.npz", "--n", "7",
                  "--out", tmp_path / "s.npy")
    assert run.returncode == 0, run.stderr
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (7, 28, 28) and samples.dtype == np.uint8


def test_cli_fashion_dataset(run_cli, tmp_path):
    run = run_cli("train", "--model", "gan", "--dataset", "fashion", "--epochs", "1",
                  "--out", tmp_path / "g")
    assert run.returncode == 2 and "only the DCGAN" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    from npgan.data import FASHION_DIR
    if not FASHION_DIR.is_dir():
        pytest.skip(f"Fashion-MNIST not in {FASHION_DIR}: apt-get install dataset-fashion-mnist")
    run = run_cli("train", "--model", "dcgan", "--dataset", "fashion", "--epochs", "1",
                  "--subset", "64", "--out", tmp_path / "f", "--quiet")
    assert run.returncode == 0, run.stderr
    model, _ = checkpoint.load(tmp_path / "f" / "checkpoint.npz")
    assert model.config.dataset == "fashion"


def test_fashion_evaluator_is_cached_apart():
    from npgan import metrics
    assert metrics.evaluator_path("fashion").name == f"evaluator-fashion-{metrics.EVALUATOR_VERSION}.npz"
    assert metrics.evaluator_path("fashion") != metrics.evaluator_path("mnist")
    assert metrics.dataset_of(build(DCGANConfig(dataset="fashion"))) == "fashion"
    assert metrics.dataset_of(build(DCGANConfig())) == "mnist"
    with pytest.raises(ValueError, match="unknown dataset"):
        metrics.load_images("cifar")
    with pytest.raises(ValueError, match="dataset must be"):
        DCGAN(DCGANConfig(dataset="cifar"))


@pytest.mark.parametrize("settings", [{}, dict(g_upsample="resize"), dict(batch_norm=False),
                                      dict(g_channels=(8, 4), d_channels=(4, 8), d_batch_norm=False),
                                      dict(d_batch_std=4), dict(d_channels=(8, 16, 32)),
                                      dict(d_channels=(8, 16, 32), d_batch_norm=False, d_batch_std=4),
                                      dict(d_channels=(8, 16, 32), d_fc=(32, 16), d_batch_std=4),
                                      dict(kernel_size=5, d_channels=(8, 16, 32, 64), d_batch_std=4),
                                      dict(g_linear_channels=48, d_stride1_conv=True),
                                      dict(g_linear_channels=48, batch_norm=False, d_stride1_conv=True,
                                           d_batch_norm=False, d_spectral_norm=True, d_fc=(16,))])
def test_weight_count_from_the_config_matches_the_networks(settings):
    """DCGANConfig.num_parameters (what the MAX_PARAMETERS check uses) counts the
    conv networks themselves (it had counted an MLP with no hidden layers)."""
    config = DCGANConfig(**settings)
    model = DCGAN(config)
    assert config.num_parameters() == model.G.num_params() + model.D.num_params()
    with pytest.raises(ValueError, match="weights together"):
        DCGANConfig(g_channels=(2048, 1024))


def test_families_are_listed_in_the_reading_order():
    # infogan.py imports dcgan.py (for its conv nets), so the DCGAN registers first;
    # the list (CLI choices, book runs, BOOK_EPOCHS) still follows 21.1–21.4
    from npgan import BOOK_EPOCHS, models
    assert models.names() == ("gan", "cgan", "wgan", "infogan", "dcgan")
    assert tuple(BOOK_EPOCHS) == models.names()
