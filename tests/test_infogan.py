"""InfoGAN (chapter 21.3): the information term's losses, the D/Q step and the
G step against finite differences (float64) and PyTorch autograd, the codes'
inputs, and training/checkpoints through the shared loop.

The reference losses are written here from the formulas of 21.3:

    D loss = mean over 2B rows of softplus(z) − y z                    (eq-dloss)
             + λ_cat · mean_B CE(softmax(Q logits), c1)
             + λ_con · mean_B ½ Σ_j (c_j − μ_j)²                       (eq-infogan-d)
    G loss = mean_B softplus(−z(G(z, c)))  + the same two terms        (eq-infogan-g)

with the G step through the UPDATED D and Q, and Q read on the fake rows only.
"""

import numpy as np
import pytest

from npgan import InfoGAN, InfoGANConfig, checkpoint, train
from npgan.batchnorm import set_batch_groups
from npgan.losses import batch_cluster_entropy, gaussian_nll

B = 4
TOL = 1e-6


def tiny_config(**overrides):
    settings = dict(dtype="float64", latent_dim=5, n_cat=3, n_cont=2, g_hidden=(8, 4),
                    d_hidden=(6, 5), batch_size=B, real_label=0.9, lambda_cat=0.7,
                    lambda_con=1.3, d_dropout=0.0, z_std=1.0)
    settings.update(overrides)
    return InfoGANConfig(**settings)


def log_softmax(z):
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def info_term(cfg, q_out, c1, cont):
    K = cfg.n_cat
    ce = -log_softmax(q_out[:, 1:1 + K])[np.arange(len(c1)), c1].mean()
    nll = 0.5 * ((q_out[:, 1 + K:] - cont) ** 2).sum(axis=1).mean()
    return cfg.lambda_cat * ce + cfg.lambda_con * nll


def cluster_entropy(logits):
    """mean_i H(softmax(z_i)) − H(mean_i softmax(z_i)), written out naively."""
    p = np.exp(log_softmax(logits))
    mean = p.mean(axis=0)
    return -(p * np.log(p)).sum(axis=1).mean() + (mean * np.log(mean)).sum()


def test_batch_cluster_entropy_value_gradient_and_limits(gc):
    rng = np.random.default_rng(5)
    logits = rng.normal(0, 2, (9, 4))
    loss, grad = batch_cluster_entropy(logits.copy())
    assert loss == pytest.approx(cluster_entropy(logits), rel=1e-12)
    err = gc.rel_error(grad, gc.fd_gradient(lambda: cluster_entropy(logits), logits))
    gc.measured("FD batch_cluster_entropy dz", err)
    assert err < 1e-8
    # sure of each row and every value used equally often: −ln K, the minimum
    sure = np.where(np.eye(4, dtype=bool)[np.arange(8) % 4], 40.0, -40.0)
    assert batch_cluster_entropy(sure)[0] == pytest.approx(-np.log(4), abs=1e-12)
    # every row sure of the same value: 0, however sure
    assert batch_cluster_entropy(np.tile([40.0, 0, 0, 0], (8, 1)))[0] == pytest.approx(0, abs=1e-12)
    assert np.all(np.isfinite(batch_cluster_entropy(sure * 30)[1]))


def test_batch_cluster_entropy_matches_torch_autograd(gc):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
    logits = np.random.default_rng(6).normal(0, 3, (16, 10))
    z = torch.tensor(logits, requires_grad=True)
    p = torch.softmax(z, dim=1)
    mean = p.mean(dim=0)
    loss = -(p * torch.log_softmax(z, dim=1)).sum(dim=1).mean() + (mean * torch.log(mean)).sum()
    loss.backward()
    ours, grad = batch_cluster_entropy(logits)
    assert ours == pytest.approx(loss.item(), rel=1e-12)
    err = gc.rel_error(grad, z.grad.numpy())
    gc.measured("torch batch_cluster_entropy dz", err)
    assert err < 1e-10


def test_gaussian_nll_value_and_gradient(gc):
    rng = np.random.default_rng(0)
    means, targets = rng.normal(size=(5, 3)), rng.uniform(-1, 1, (5, 3))
    loss, grad = gaussian_nll(means.copy(), targets)
    assert loss == pytest.approx(0.5 * ((means - targets) ** 2).sum() / 5, rel=1e-14)
    fd = gc.fd_gradient(lambda: 0.5 * ((means - targets) ** 2).sum() / 5, means)
    assert gc.rel_error(grad, fd) < 1e-9


@pytest.mark.parametrize("case", ["plain", "dropout", "relu sgd", "cluster entropy on real"])
def test_train_step_gradients_match_finite_differences(gc, case):
    extra = {"plain": {}, "dropout": dict(d_dropout=0.3),
             "relu sgd": dict(activation="relu", optimizer="sgd", momentum=0.9),
             "cluster entropy on real": dict(lambda_ent=0.8, d_dropout=0.3)}[case]
    cfg = tiny_config(**extra)
    model = InfoGAN(cfg, seed=4)
    rng = np.random.default_rng(7)
    for layer in gc.linears(model.G) + gc.linears(model.D):
        layer.b[...] = rng.normal(0, 0.1, layer.b.shape)
    model.train_step(rng.uniform(-1, 1, (B, 784)))  # optimizer state, moved weights
    x_real = rng.uniform(-1, 1, (B, 784))
    rec = gc.record_train_step(model, x_real)
    slope, shapes_d, shapes_g = rec["slope"], rec["shapes_d"], rec["shapes_g"]
    d_in, g_in = rec["d_in"], rec["g_in"]
    L, K = cfg.latent_dim, cfg.n_cat
    c1 = g_in[:, L:L + K].argmax(axis=1)
    cont = g_in[:, L + K:]
    # G's input is [z, one-hot c1, c2, c3] with the codes inside their priors
    np.testing.assert_array_equal(g_in[:, L:L + K].sum(axis=1), 1)
    assert np.all(np.abs(cont) <= 1)
    assert shapes_d[-1] == (shapes_d[-2][1], 1 + K + cfg.n_cont)  # logit + Q's heads
    np.testing.assert_array_equal(d_in[:B], x_real)
    np.testing.assert_allclose(d_in[B:], gc.ref_mlp(rec["thG0"], shapes_g, g_in, slope, "tanh"),
                               rtol=0, atol=1e-14)
    np.testing.assert_array_equal(rec["thD_at_g"], rec["thD1"])   # G goes through the updated D
    np.testing.assert_array_equal(rec["thD_end"], rec["thD1"])    # and leaves it alone
    np.testing.assert_array_equal(rec["gD_end"], rec["gD"])

    targets = np.r_[np.full(B, cfg.real_label), np.zeros(B)][:, None]
    theta_d = rec["thD0"].copy()
    watch = gc.KinkWatch()

    def d_loss():
        signs = []
        out = gc.ref_mlp(theta_d, shapes_d, d_in, slope, None, rec["masks_d"], signs)
        watch.check(signs)
        z = out[:, :1]
        # lambda_ent: Q's c1 on the real rows (their labels are never used)
        ent = cfg.lambda_ent * cluster_entropy(out[:B, 1:1 + K]) if cfg.lambda_ent else 0.0
        return float(np.mean(gc.softplus(z) - targets * z) + info_term(cfg, out[B:], c1, cont) + ent)

    assert rec["losses"][0] == pytest.approx(d_loss(), rel=1e-12)
    err_d = gc.rel_error(rec["gD"], gc.fd_gradient(d_loss, theta_d))

    theta_g = rec["thG0"].copy()
    watch_g = gc.KinkWatch()

    def g_loss():
        signs = []
        fake = gc.ref_mlp(theta_g, shapes_g, g_in, slope, "tanh", None, signs)
        out = gc.ref_mlp(rec["thD1"], shapes_d, fake, slope, None, rec["masks_g"], signs)
        watch_g.check(signs)
        return float(np.mean(gc.softplus(-out[:, :1])) + info_term(cfg, out, c1, cont))

    assert rec["losses"][1] == pytest.approx(g_loss(), rel=1e-12)
    err_g = gc.rel_error(rec["gG"], gc.fd_gradient(g_loss, theta_g))
    assert watch.crossings == watch_g.crossings == 0, "test set-up: an FD step crossed a kink"
    gc.measured(f"FD InfoGAN D+Q grads [{case}]", err_d)
    gc.measured(f"FD InfoGAN G grads (through D and Q) [{case}]", err_g)
    assert err_d < TOL and err_g < TOL, (err_d, err_g)


def test_train_step_matches_torch_autograd(gc):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
    F = torch.nn.functional
    cfg = tiny_config(n_cat=10, n_cont=2, latent_dim=62, g_hidden=(32, 64), d_hidden=(64, 32),
                      d_dropout=0.3, batch_size=16, lambda_con=0.5)
    model = InfoGAN(cfg, seed=1)
    rng = np.random.default_rng(2)
    x_real = rng.uniform(-1, 1, (16, 784))
    rec = gc.record_train_step(model, x_real)
    n = 16

    def torch_mlp(theta, shapes, x, masks=None, output=None):
        params, start, h = [], 0, x
        for i, (n_in, n_out) in enumerate(shapes):
            W = torch.tensor(theta[start:start + n_in * n_out].reshape(n_in, n_out).copy(),
                             requires_grad=True)
            start += n_in * n_out
            b = torch.tensor(theta[start:start + n_out].copy(), requires_grad=True)
            start += n_out
            params += [W, b]
            h = h @ W + b
            if i < len(shapes) - 1:
                h = F.leaky_relu(h, cfg.leaky_slope)
                if masks is not None:
                    h = h * torch.from_numpy(masks[i])
            elif output == "tanh":
                h = torch.tanh(h)
        return h, params

    def flat_grad(params):
        return torch.cat([p.grad.reshape(-1) for p in params]).numpy()

    g_in = torch.from_numpy(rec["g_in"])
    K = cfg.n_cat
    c1 = torch.from_numpy(rec["g_in"][:, 62:62 + K].argmax(axis=1))
    cont = torch.from_numpy(rec["g_in"][:, 62 + K:])

    def info(out):
        return (cfg.lambda_cat * F.cross_entropy(out[:, 1:1 + K], c1)
                + cfg.lambda_con * 0.5 * ((out[:, 1 + K:] - cont) ** 2).sum(dim=1).mean())

    fake, params_g = torch_mlp(rec["thG0"], rec["shapes_g"], g_in, output="tanh")
    out, params_d = torch_mlp(rec["thD0"], rec["shapes_d"],
                              torch.cat([torch.from_numpy(x_real), fake.detach()]), rec["masks_d"])
    targets = torch.cat([torch.full((n, 1), cfg.real_label, dtype=torch.float64),
                         torch.zeros(n, 1, dtype=torch.float64)])
    loss_d = F.binary_cross_entropy_with_logits(out[:, :1], targets) + info(out[n:])
    loss_d.backward()
    out1, _ = torch_mlp(rec["thD1"], rec["shapes_d"], fake, rec["masks_g"])
    loss_g = F.binary_cross_entropy_with_logits(out1[:, :1], torch.ones(n, 1, dtype=torch.float64)) \
        + info(out1)
    loss_g.backward()
    assert rec["losses"][0] == pytest.approx(loss_d.item(), rel=1e-12)
    assert rec["losses"][1] == pytest.approx(loss_g.item(), rel=1e-12)
    err_d, err_g = gc.rel_error(rec["gD"], flat_grad(params_d)), gc.rel_error(rec["gG"], flat_grad(params_g))
    gc.measured("torch InfoGAN D+Q grads", err_d)
    gc.measured("torch InfoGAN G grads", err_g)
    assert err_d < 1e-10 and err_g < 1e-10, (err_d, err_g)


def test_codes_enter_g_where_inputs_puts_them():
    model = InfoGAN(tiny_config(), seed=0)
    z = np.random.default_rng(0).normal(size=(3, 5))
    g_in = model.inputs(z, np.array([0, 2, 1]), np.array([[0.5, -2.0]]))
    np.testing.assert_array_equal(g_in[:, :5], z)
    np.testing.assert_array_equal(g_in[:, 5:8], np.eye(3)[[0, 2, 1]])
    np.testing.assert_array_equal(g_in[:, 8:], [[0.5, -2.0]] * 3)
    with pytest.raises(ValueError, match="c1 must be in 0…2"):
        model.inputs(z, 3, 0.0)
    with pytest.raises(ValueError, match="takes no labels"):
        model.generate(g_in, labels=[1, 2, 3])
    with pytest.raises(ValueError, match=r"shape \(N, 10\)"):
        model.generate(z)


def test_same_seed_same_z_and_codes():
    """sample_noise draws z, then c1, then the continuous codes, always all of them."""
    model = InfoGAN(tiny_config(), seed=0)
    a = model.sample_noise(50, np.random.default_rng(3))
    b = model.sample_noise(50, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    c1 = a[:, 5:8].argmax(axis=1)
    assert set(c1) == {0, 1, 2}
    assert np.all(np.abs(a[:, 8:]) <= 1) and a[:, 8:].std() > 0.3


def test_snapshot_rows_hold_one_c1_each():
    from npgan.train import fixed_inputs

    model = InfoGAN(tiny_config(n_cat=10), seed=0)
    g_in, labels = fixed_inputs(model)
    assert labels is None and g_in.shape == (100, model.input_size)
    np.testing.assert_array_equal(g_in[:, 5:15].argmax(axis=1), np.repeat(np.arange(10), 10))
    np.testing.assert_array_equal(g_in[:, 15:], 0)


@pytest.mark.parametrize("q_hidden,q_batch_norm", [(0, False), (8, False), (8, True)])
def test_trains_without_labels_and_checkpoints_round_trip(tmp_path, q_hidden, q_batch_norm):
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (64, 784)).astype(np.float32)
    cfg = InfoGANConfig(batch_size=16, g_hidden=(32, 32), d_hidden=(32, 32), q_hidden=q_hidden,
                        q_batch_norm=q_batch_norm)
    model = InfoGAN(cfg, seed=0)
    history = train(model, images, epochs=2, progress=False)
    assert len(history.records) == 8 and len(model.info_log) == 8
    with pytest.raises(ValueError, match="without labels"):
        model.train_step(images[:16], np.zeros(16, int))
    path = checkpoint.save(model, tmp_path / "info.npz", epoch=2, seed=0)
    loaded, meta = checkpoint.load(path)
    assert isinstance(loaded, InfoGAN) and meta["model"] == "infogan" and loaded.config == cfg
    g_in = model.sample_noise(5, np.random.default_rng(1))
    np.testing.assert_array_equal(loaded.generate(g_in), model.generate(g_in))
    x = model.generate(g_in)
    probs, means = loaded.read_codes(x)
    assert probs.shape == (5, 10) and means.shape == (5, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-6)
    for a, b in zip(model.read_codes(x), (probs, means)):   # D and Q came back too
        np.testing.assert_array_equal(a, b)


@pytest.fixture
def info_checkpoint(tmp_path):
    cfg = InfoGANConfig(g_hidden=(16,), d_hidden=(16,))
    return checkpoint.save(InfoGAN(cfg, seed=0), tmp_path / "info.npz", epoch=0, seed=0)


def test_cli_sample_sets_codes_and_keeps_the_rest(run_cli, info_checkpoint, tmp_path):
    """With one --seed, z and the codes not given are the same whatever codes are set:
    a sweep of c2 changes the samples only through c2."""
    outs = []
    for value in ("-2", "2"):
        out = tmp_path / f"c2_{value}.npy"
        r = run_cli("sample", "--checkpoint", info_checkpoint, "--n", 6, "--seed", 5,
                    "--code", "c1=3", "--code", f"c2={value}", "--out", out)
        assert r.returncode == 0, r.stderr
        outs.append(np.load(out))
    assert outs[0].shape == (6, 28, 28) and not np.array_equal(outs[0], outs[1])
    model, _ = checkpoint.load(info_checkpoint)
    g_in = model.set_codes(model.sample_noise(6, np.random.default_rng(5)), {"c1": 3, "c2": 2.0})
    from npgan.plot import to_uint8
    np.testing.assert_array_equal(outs[1], to_uint8(model.generate(g_in)).reshape(-1, 28, 28))


@pytest.mark.parametrize("code,message", [
    ("c4=1", "unknown code 'c4': this model has c1, c2, c3"),
    ("c1=10", "c1 must be a whole number 0–9, got 10.0"),
    ("c1=2.5", "c1 must be a whole number 0–9"),
    ("c2=inf", "c2 must be a finite number"),
    ("c2", "expected NAME=VALUE such as c1=3 or c2=0.5"),
])
def test_cli_sample_rejects_bad_codes_in_one_line(run_cli, info_checkpoint, tmp_path, code, message):
    r = run_cli("sample", "--checkpoint", info_checkpoint, "--code", code, "--out", tmp_path / "x.npy")
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "x.npy").exists()


def test_cli_code_on_a_model_without_codes(run_cli, tmp_path):
    from npgan import GANConfig, build
    path = checkpoint.save(build(GANConfig(g_hidden=(8,), d_hidden=(8,))), tmp_path / "gan.npz")
    r = run_cli("sample", "--checkpoint", path, "--code", "c1=1", "--out", tmp_path / "x.npy")
    assert r.returncode == 2 and "--code needs an InfoGAN checkpoint; this one is a GAN" in r.stderr


def test_z_std_scales_z_only():
    model = InfoGAN(tiny_config(latent_dim=50, z_std=0.2), seed=0)
    g_in = model.sample_noise(4000, np.random.default_rng(0))
    assert g_in[:, :50].std() == pytest.approx(0.2, rel=0.02)
    np.testing.assert_array_equal(g_in[:, 50:53].sum(axis=1), 1)        # c1 still one-hot
    assert np.abs(g_in[:, 53:]).max() <= 1 and g_in[:, 53:].std() == pytest.approx(3 ** -0.5, rel=0.03)
    grid = model.code_grid(np.random.default_rng(0), n_per_row=200)
    assert grid[:, :50].std() == pytest.approx(0.2, rel=0.05)


STEP_CASES = {"two convs in D": (dict(d_channels=(2, 3)), 3),
              # the DCGAN book recipe's D: a third conv, no BN (seed: no kink crossed)
              "three convs in D, no BN": (dict(d_channels=(2, 3, 4), d_batch_norm=False), 9),
              # Q with a hidden layer of its own (qhead.py), on the MLP and on the conv D
              "MLP, Q with a hidden layer": (dict(arch="mlp", q_hidden=4), 1),
              "two convs in D, Q with a hidden layer": (dict(d_channels=(2, 3), q_hidden=3), 2),
              # the paper's Q: FC, BN, LeakyReLU on the shared trunk (lr_q changes no gradient:
              # test_lr_q_moves_q_own_weights_only_and_in_proportion)
              "MLP, Q with a BN hidden layer": (dict(arch="mlp", q_hidden=4, q_batch_norm=True), 1)}


@pytest.mark.parametrize("case", list(STEP_CASES))
def test_infogan_step_gradients_match_finite_differences_of_the_forward_pass(gc, case):
    """arch="conv" (DCGAN's G and D, checked layer by layer in test_conv.py) and
    q_hidden (Q's own hidden layer): the step's D and G gradients against finite
    differences of the losses of eq-infogan-d and eq-infogan-g, computed with the
    networks' own forward passes (BN statistics per half, as in the step). Thousands
    of ReLU units: a small step h keeps them all on their side (the seeds are chosen
    so that none is crossed); h = 1e-5, not smaller, since below it the loss's own
    rounding dominates the difference (at 1e-6 the G check of the three-conv D measured
    8.7e-7 on one machine and 1.1e-6 on another, over the tolerance)."""
    from npgan.conv import Conv2d, ConvTranspose2d
    from npgan.layers import LeakyReLU, Linear, ReLU
    from npgan.qhead import QHead

    settings, seed = STEP_CASES[case]
    cfg = tiny_config(**{"arch": "conv", "g_channels": (3, 2), **settings})
    model = InfoGAN(cfg, seed=seed)
    rng = np.random.default_rng(3)
    for net in (model.G, model.D):       # non-zero biases: no unit sits on its kink
        for layer in net.layers:
            if isinstance(layer, (Linear, Conv2d, ConvTranspose2d)):
                layer.b[...] = rng.normal(0, 0.1, layer.b.shape)
            if isinstance(layer, QHead):
                for b in (layer.b_d, layer.b_h, layer.b_q):
                    b[...] = rng.normal(0, 0.1, b.shape)
    model.train_step(rng.uniform(-1, 1, (B, 784)))     # Adam state, moved weights
    rec = gc.record_train_step(model, rng.uniform(-1, 1, (B, 784)))

    def signs(*nets):
        return [layer.positive.copy() if isinstance(layer, QHead) else layer.y > 0
                for net in nets for layer in net.layers
                if isinstance(layer, (ReLU, LeakyReLU, QHead))]
    d_in, g_in = rec["d_in"], rec["g_in"]
    L, K = cfg.latent_dim, cfg.n_cat
    c1, cont = g_in[:, L:L + K].argmax(axis=1), g_in[:, L + K:]
    targets = np.r_[np.full(B, cfg.real_label), np.zeros(B)][:, None]
    D, G = model.D, model.G
    D.flat_params[...] = rec["thD0"]
    assert isinstance(D.layers[-1], QHead) == bool(cfg.q_hidden)

    watch, watch_g = gc.KinkWatch(), gc.KinkWatch()

    def d_loss():
        out = D.forward(d_in).copy()
        watch.check(signs(D))
        z = out[:, :1]
        return float(np.mean(gc.softplus(z) - targets * z) + info_term(cfg, out[B:], c1, cont))

    assert rec["losses"][0] == pytest.approx(d_loss(), rel=1e-10)
    err_d = gc.rel_error(rec["gD"], gc.fd_gradient(d_loss, D.flat_params, h=1e-5))
    D.flat_params[...] = rec["thD1"]
    G.flat_params[...] = rec["thG0"]
    set_batch_groups(D, B)

    def g_loss():
        out = D.forward(G.forward(g_in)).copy()
        watch_g.check(signs(G, D))
        return float(np.mean(gc.softplus(-out[:, :1])) + info_term(cfg, out, c1, cont))

    assert rec["losses"][1] == pytest.approx(g_loss(), rel=1e-10)
    err_g = gc.rel_error(rec["gG"], gc.fd_gradient(g_loss, G.flat_params, h=1e-5))
    assert watch.crossings == watch_g.crossings == 0, "a ReLU kink was crossed: change the seed"
    gc.measured(f"FD InfoGAN D+Q grads [{case}]", err_d)
    gc.measured(f"FD InfoGAN G grads (through D and Q) [{case}]", err_g)
    assert err_d < TOL and err_g < TOL, (err_d, err_g)


def _q_head_case(dtype=np.float64, batch_norm=False):
    """A QHead of odd sizes, non-zero biases, an input and an upstream gradient."""
    from npgan.layers import Sequential
    from npgan.qhead import QHead

    rng = np.random.default_rng(11)
    head = QHead(7, 3, 4, rng, slope=0.2, dtype=dtype, batch_norm=batch_norm)
    Sequential([head])         # its weights in flat vectors, as in D
    if batch_norm:
        head.gamma_h[...] = rng.normal(1, 0.3, 3)
        head.beta_h[...] = rng.normal(0, 0.3, 3)
    for b in (head.b_d, head.b_h, head.b_q):
        b[...] = rng.normal(0, 0.3, b.shape)
    h = rng.normal(size=(5, 7))
    upstream = rng.normal(size=(5, 5))
    return head, h, upstream


@pytest.mark.parametrize("batch_norm", [False, True])
def test_q_head_matches_torch_autograd(gc, batch_norm):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
    F = torch.nn.functional
    head, h, upstream = _q_head_case(batch_norm=batch_norm)
    out = head.forward(h.copy()).copy()
    dh = head.backward(upstream.copy()).copy()
    names = head.params
    t = {name: torch.tensor(getattr(head, name), requires_grad=True) for name in names}
    th = torch.tensor(h, requires_grad=True)
    logit = th @ t["W_d"] + t["b_d"]
    u = th @ t["W_h"] + t["b_h"]
    if batch_norm:   # training mode: the batch's own mean and biased variance
        u = F.batch_norm(u, None, None, t["gamma_h"], t["beta_h"], training=True, eps=1e-5)
    q = F.leaky_relu(u, 0.2) @ t["W_q"] + t["b_q"]
    t_out = torch.cat([logit, q], dim=1)
    (t_out * torch.from_numpy(upstream)).sum().backward()
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=0, atol=1e-13)
    if batch_norm:   # BN takes the batch mean out: b_h's gradient is 0 up to rounding, both ways
        assert np.abs(head.db_h).max() < 1e-13 and np.abs(t["b_h"].grad.numpy()).max() < 1e-13
        names = tuple(n for n in names if n != "b_h")
    errors = [gc.rel_error(getattr(head, "d" + name), t[name].grad.numpy()) for name in names]
    errors.append(gc.rel_error(dh, th.grad.numpy()))
    gc.measured(f"torch QHead (D's logit and Q's own hidden layer{', BN' * batch_norm})", max(errors))
    assert max(errors) < 1e-12, dict(zip([*names, "h"], errors))
    # the G step asks for dL/dh alone: the weights' gradients stay as they were
    before = [getattr(head, "d" + name).copy() for name in names]
    head.forward(h.copy())
    np.testing.assert_allclose(head.backward(2 * upstream, param_grads=False), 2 * dh, rtol=1e-13)
    for name, old in zip(names, before):
        np.testing.assert_array_equal(getattr(head, "d" + name), old)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_q_head_matches_finite_differences(gc, batch_norm):
    head, h, upstream = _q_head_case(batch_norm=batch_norm)

    def loss():
        return float((head.forward(h) * upstream).sum())

    head.forward(h)
    dh = head.backward(upstream.copy()).copy()
    names = head.params
    if batch_norm:   # b_h's gradient is 0 under BN: compared in absolute terms
        assert np.abs(head.db_h).max() < 1e-13
        assert np.abs(gc.fd_gradient(loss, head.b_h)).max() < 1e-9
        names = tuple(n for n in names if n != "b_h")
    errors = {name: gc.rel_error(getattr(head, "d" + name), gc.fd_gradient(loss, getattr(head, name)))
              for name in names}
    errors["h"] = gc.rel_error(dh, gc.fd_gradient(loss, h))
    gc.measured(f"FD QHead (D's logit and Q's own hidden layer{', BN' * batch_norm})", max(errors.values()))
    assert max(errors.values()) < 1e-9, errors


@pytest.mark.parametrize("field,value,message", [
    ("n_cat", -1, "InfoGANConfig.n_cat must be a whole number in [0, 1000], got -1"),
    ("n_cont", 1.5, "InfoGANConfig.n_cont must be a whole number"),
    ("z_std", 0.0, "InfoGANConfig.z_std must be"),
    ("arch", "rnn", "InfoGANConfig.arch must be one of"),
    ("lambda_cat", -1.0, "InfoGANConfig.lambda_cat must be"),
    ("q_hidden", -3, "InfoGANConfig.q_hidden must be a whole number"),
    ("lambda_ent", -0.5, "InfoGANConfig.lambda_ent must be"),
    ("q_batch_norm", True, "q_batch_norm normalises Q's own hidden layer: set q_hidden too"),
    ("q_batch_norm", 1, "InfoGANConfig.q_batch_norm must be True or False"),
    ("lr_q", -1e-3, "InfoGANConfig.lr_q must be"),
])
def test_infogan_config_says_which_field_is_wrong(field, value, message):
    with pytest.raises((TypeError, ValueError), match=message.replace("[", r"\[").replace("(", r"\(")):
        InfoGANConfig(**{field: value})
    with pytest.raises(ValueError, match="needs codes"):
        InfoGANConfig(n_cat=0, n_cont=0)


@pytest.mark.parametrize("arch,upsample,d_channels,q_hidden,q_bn", [
    ("mlp", "transposed", (4, 8), 0, False), ("conv", "transposed", (4, 8), 0, False),
    ("conv", "resize", (4, 8), 0, False), ("conv", "transposed", (4, 8, 16), 0, False),
    ("mlp", "transposed", (4, 8), 5, False), ("conv", "transposed", (4, 8, 16), 7, False),
    ("mlp", "transposed", (4, 8), 5, True), ("conv", "transposed", (4, 8), 6, True)])
def test_num_parameters_counts_what_is_built(arch, upsample, d_channels, q_hidden, q_bn):
    cfg = InfoGANConfig(arch=arch, g_channels=(8, 4), d_channels=d_channels, g_hidden=(16,),
                        d_hidden=(16,), g_upsample=upsample, q_hidden=q_hidden, q_batch_norm=q_bn)
    model = InfoGAN(cfg, seed=0)
    assert cfg.num_parameters() == model.G.num_params() + model.D.num_params()


@pytest.mark.parametrize("optimizer,q_hidden", [("adam", 0), ("adam", 5), ("sgd", 5)])
def test_lr_q_moves_q_own_weights_only_and_in_proportion(optimizer, q_hidden):
    """lr_q = 5·lr_d: after one D step Q's own weights have moved 5 times as far as with
    lr_q unset; the trunk and D's logit exactly as far."""
    from npgan.qhead import QHead

    def d_step(lr_q):        # D after the whole step is D after its own step: G's leaves it alone
        cfg = tiny_config(q_hidden=q_hidden, optimizer=optimizer, momentum=0.5, lr_q=lr_q)
        model = InfoGAN(cfg, seed=2)
        start = model.D.flat_params.copy()
        model.train_step(np.random.default_rng(0).uniform(-1, 1, (B, 784)))
        return model, start, model.D.flat_params.copy()

    plain, start, after_plain = d_step(0.0)
    fast, start_fast, moved_fast = d_step(5 * plain.config.lr_d)
    np.testing.assert_array_equal(start, start_fast)
    own = np.zeros(start.size, bool)
    for w in fast.q_weights:                 # the positions of Q's own weights in D's vector
        own[_positions(fast.D.flat_params, w)] = True
    head = fast.D.layers[-1]
    assert own.sum() == (sum(getattr(head, n).size for n in head.own) if isinstance(head, QHead)
                         else head.W[:, 1:].size + head.b[1:].size)
    np.testing.assert_array_equal(moved_fast[~own], after_plain[~own])
    np.testing.assert_allclose(moved_fast[own] - start[own], 5 * (after_plain[own] - start[own]),
                               rtol=1e-9, atol=1e-15)
    assert np.abs(after_plain[own] - start[own]).max() > 0


def _positions(flat, view):
    """Indices in ``flat`` of the elements of ``view`` (a view into it)."""
    offset = (view.__array_interface__["data"][0] - flat.__array_interface__["data"][0]) // flat.itemsize
    strides = [s // flat.itemsize for s in view.strides]
    grid = np.indices(view.shape).reshape(view.ndim, -1)
    return offset + sum(g * s for g, s in zip(grid, strides))
