"""Semi-supervised InfoGAN (npgan.semisup, InfoGANConfig.n_labels): the labelled
set, the step's extra term against finite differences and PyTorch, n_labels = 0
bit for bit as before, and the model through checkpoints, the CLI and the exporter.

The reference D loss with labelled rows, from semisup.py's formula:

    D loss = mean over the 2B real and fake rows of softplus(z) − y z
             + λ_cat CE(Q(fake), c1) + λ_con ½ Σ (c − μ)²     (as without labels)
             + λ_label · mean over the B labelled rows of CE(softmax(Q's c1 logits), label)
"""

import numpy as np
import pytest

from npgan import InfoGAN, InfoGANConfig, checkpoint, train
from npgan.batchnorm import set_batch_groups
from npgan.gan import IMAGE_SIZE
from npgan.layers import LeakyReLU
from npgan.qhead import QHead
from npgan.losses import batch_cluster_entropy, bce_with_logits
from npgan.semisup import choose_labelled

from test_infogan import B, TOL, info_term, log_softmax, tiny_config


def committed_train_step(self, x_real):
    """InfoGAN.train_step as commit 0990086 had it, before n_labels: the reference
    for n_labels = 0, which must give the same weights bit for bit."""
    B, c, width = x_real.shape[0], self.config, 1 + self.config.n_cat + self.config.n_cont
    _, cat_part, cont_part = self.code_slices
    g_in = self.sample_noise(B, out=self._buffer("g_in", (B, self.input_size), self.dtype))
    c1 = g_in[:, cat_part].argmax(axis=1)
    cont = g_in[:, cont_part]
    d_in = self._buffer("d_in", (2 * B, IMAGE_SIZE), self.dtype)
    d_in[:B] = x_real
    d_in[B:] = self.G.forward(g_in)
    targets = self._buffer("d_targets", (2 * B, 1), self.dtype)
    targets[:B] = c.real_label
    targets[B:] = 0
    set_batch_groups(self.D, B)
    out = self.D.forward(d_in)
    loss_gan, grad_logit, prob = bce_with_logits(out[:, :1], targets)
    grad = self._buffer("d_grad", (2 * B, width), self.dtype)
    grad[:] = 0
    grad[:, :1] = grad_logit
    info, _, _ = self._info_loss(out[B:], c1, cont, grad[B:])
    if c.lambda_ent and c.n_cat:
        ent, g = batch_cluster_entropy(out[:B, 1:1 + c.n_cat])
        np.multiply(g, c.lambda_ent, out=grad[:B, 1:1 + c.n_cat])
        info += c.lambda_ent * ent
    loss_d = loss_gan + info
    d_real, d_fake = float(prob[:B].mean()), float(prob[B:].mean())
    self.D.backward(grad, input_grad=False)
    self.opt_d.step()
    ones = self._buffer("g_targets", (B, 1), self.dtype)
    ones[:] = 1
    out = self.D.forward(d_in[B:])
    loss_gan, grad_logit, _ = bce_with_logits(out[:, :1], ones)
    grad = self._buffer("g_grad", (B, width), self.dtype)
    grad[:, :1] = grad_logit
    info, ce, nll = self._info_loss(out, c1, cont, grad)
    grad_x = self.D.backward(grad, param_grads=False)
    self.G.backward(grad_x, input_grad=False)
    self.opt_g.step()
    self.after_g_step()
    self.info_log.append((ce, nll))
    return loss_d, loss_gan + info, d_real, d_fake


@pytest.mark.parametrize("settings", [
    {},                                                    # the book's recipe (float32, batch 64)
    dict(ema_decay=0.999, q_hidden=16, g_hidden=(32, 64), d_hidden=(64, 32)),
    dict(dtype="float64", g_hidden=(8, 4), d_hidden=(6, 5), batch_size=4, lambda_ent=0.5),
    dict(arch="conv", g_channels=(3, 2), d_channels=(2, 3), batch_size=8, d_dropout=0.0),
])
def test_no_labels_trains_bit_for_bit_as_before(settings):
    cfg = InfoGANConfig(**settings)
    assert cfg.n_labels == 0
    ours, before = InfoGAN(cfg, seed=5), InfoGAN(cfg, seed=5)
    rng = np.random.default_rng(0)
    batches = rng.uniform(-1, 1, (3, cfg.batch_size, 784)).astype(cfg.dtype)
    for x in batches:
        assert ours.train_step(x) == committed_train_step(before, x)
    for a, b in ((ours.G, before.G), (ours.D, before.D), (ours.sampler, before.sampler)):
        np.testing.assert_array_equal(a.flat_params, b.flat_params)
        np.testing.assert_array_equal(a.flat_buffers, b.flat_buffers)
    for a, b in ((ours.opt_d, before.opt_d), (ours.opt_g, before.opt_g)):
        np.testing.assert_array_equal(a.M, b.M)
        np.testing.assert_array_equal(a.V, b.V)
    assert ours.rng.random() == before.rng.random()        # the same random numbers drawn
    assert ours.info_log == before.info_log and ours.label_log == []


# ---------------------------------------------------------------- the labelled set

def test_choose_labelled_is_balanced_seeded_nested_and_outside_validation():
    labels = np.random.default_rng(0).integers(0, 10, 60_000)
    labels[50_000:] = 3          # a choice from the validation part would show up as extra 3s
    a = choose_labelled(labels, 100, seed=0)
    assert len(a) == len(set(a)) == 100 and a.max() < 50_000
    np.testing.assert_array_equal(np.bincount(labels[a], minlength=10), np.full(10, 10))
    np.testing.assert_array_equal(a, choose_labelled(labels, 100, seed=0))     # the seed decides
    assert not np.array_equal(a, choose_labelled(labels, 100, seed=1))
    assert set(choose_labelled(labels, 20, seed=0)) <= set(a) <= set(choose_labelled(labels, 300, seed=0))
    with pytest.raises(ValueError, match="positive multiple of 10"):
        choose_labelled(labels, 15, seed=0)
    with pytest.raises(ValueError, match="hold 2 with label 7"):
        choose_labelled(np.r_[np.repeat([0, 1, 2, 3, 4, 5, 6, 8, 9], 5), [7, 7]], 30, seed=0)


def test_n_labels_config_and_use_labels_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"n_labels must be a multiple of n_cat \(10"):
        InfoGANConfig(n_labels=15)
    with pytest.raises(ValueError, match="n_labels must be a whole number"):
        InfoGANConfig(n_labels=-10)
    with pytest.raises(ValueError, match="lambda_label must be"):
        InfoGANConfig(lambda_label=-1.0)
    x = np.zeros((64, 784), np.float32)
    model = InfoGAN(InfoGANConfig(g_hidden=(8,), d_hidden=(8,), batch_size=16, n_labels=10), seed=0)
    with pytest.raises(ValueError, match="call model.use_labels"):
        model.train_step(x[:16])
    with pytest.raises(ValueError, match="labels must be whole numbers 0…9"):
        model.use_labels(x, np.full(64, 10))
    with pytest.raises(ValueError, match="without labels"):
        InfoGAN(InfoGANConfig(g_hidden=(8,), d_hidden=(8,)), seed=0).use_labels(x, np.arange(64) % 10)


# ---------------------------------------------------------------- the step's gradients

def labelled_case(seed=4, **overrides):
    """A tiny semi-supervised InfoGAN (float64) with its labelled set attached:
    2 images of each value of c1 (fewer than the batch: drawn with replacement)."""
    n_cat = overrides.get("n_cat", 3)
    cfg = tiny_config(n_labels=2 * n_cat, lambda_label=1.7, **overrides)
    model = InfoGAN(cfg, seed=seed)
    rng = np.random.default_rng(7)
    images = rng.uniform(-1, 1, (10 * n_cat, 784))
    model.use_labels(images, np.arange(10 * n_cat) % n_cat, seed=1)
    for layer in model.D.layers + model.G.layers:
        if hasattr(layer, "b"):
            layer.b[...] = rng.normal(0, 0.1, layer.b.shape)
    model.train_step(rng.uniform(-1, 1, (B, 784)))   # Adam state, moved weights
    return model, cfg, rng


def labels_of_rows(model, rows):
    """Which labelled images the step drew, found by their pixels: their labels."""
    lab = model.labelled
    return np.array([lab.labels[np.flatnonzero((lab.images == row).all(axis=1))[0]] for row in rows])


@pytest.mark.parametrize("case", ["plain", "dropout", "dropout, Q with a hidden layer"])
def test_labelled_step_matches_finite_differences(gc, case):
    extra = {"plain": {}, "dropout": dict(d_dropout=0.3),
             "dropout, Q with a hidden layer": dict(d_dropout=0.3, q_hidden=4)}[case]
    model, cfg, rng = labelled_case(**extra)
    x_real = rng.uniform(-1, 1, (B, 784))
    rec = gc.record_train_step(model, x_real, d_rows=3 * B)
    d_in, g_in, K = rec["d_in"], rec["g_in"], cfg.n_cat
    np.testing.assert_array_equal(d_in[:B], x_real)
    y = labels_of_rows(model, d_in[2 * B:])
    c1, cont = g_in[:, cfg.latent_dim:cfg.latent_dim + K].argmax(axis=1), g_in[:, cfg.latent_dim + K:]
    targets = np.r_[np.full(B, cfg.real_label), np.zeros(B)][:, None]
    D, masks = model.D, rec["masks_d"]
    D.flat_params[...] = rec["thD0"]

    def forward_d(x):      # D with the step's dropout masks
        from npgan.layers import Dropout
        h, k = x, 0
        for layer in D.layers:
            if isinstance(layer, Dropout):
                h = h * masks[k]
                k += 1
            else:
                h = layer.forward(h, train=True)
        return h

    watch = gc.KinkWatch()

    def d_loss():
        out = forward_d(d_in).copy()
        watch.check([layer.positive.copy() if isinstance(layer, QHead) else layer.y > 0
                     for layer in D.layers if isinstance(layer, (LeakyReLU, QHead))])
        z = out[:2 * B, :1]
        label_ce = -log_softmax(out[2 * B:, 1:1 + K])[np.arange(B), y].mean()
        return float(np.mean(gc.softplus(z) - targets * z) + info_term(cfg, out[B:2 * B], c1, cont)
                     + cfg.lambda_label * label_ce)

    assert rec["losses"][0] == pytest.approx(d_loss(), rel=1e-12)
    label_ce = -log_softmax(forward_d(d_in)[2 * B:, 1:1 + K])[np.arange(B), y].mean()
    assert model.label_log[-1] == pytest.approx(label_ce, rel=1e-12)
    err_d = gc.rel_error(rec["gD"], gc.fd_gradient(d_loss, D.flat_params))
    assert watch.crossings == 0, "test set-up: an FD step crossed a kink"
    gc.measured(f"FD semi-supervised InfoGAN D+Q grads [{case}]", err_d)
    assert err_d < TOL, err_d
    np.testing.assert_array_equal(rec["thD_at_g"], rec["thD1"])   # G still through the updated D


def test_labelled_step_matches_torch_autograd(gc):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
    F = torch.nn.functional
    model, cfg, rng = labelled_case(seed=2, n_cat=10, latent_dim=12, g_hidden=(16, 32),
                                    d_hidden=(32, 16), d_dropout=0.3, lambda_con=0.5)
    x_real = rng.uniform(-1, 1, (B, 784))
    rec = gc.record_train_step(model, x_real, d_rows=3 * B)
    d_in, g_in, K = rec["d_in"], rec["g_in"], cfg.n_cat
    y = torch.from_numpy(labels_of_rows(model, d_in[2 * B:]))
    params, start, h = [], 0, torch.from_numpy(d_in)
    for i, (n_in, n_out) in enumerate(rec["shapes_d"]):
        W = torch.tensor(rec["thD0"][start:start + n_in * n_out].reshape(n_in, n_out), requires_grad=True)
        start += n_in * n_out
        b = torch.tensor(rec["thD0"][start:start + n_out], requires_grad=True)
        start += n_out
        params += [W, b]
        h = h @ W + b
        if i < len(rec["shapes_d"]) - 1:
            h = F.leaky_relu(h, cfg.leaky_slope) * torch.from_numpy(rec["masks_d"][i])
    c1 = torch.from_numpy(g_in[:, cfg.latent_dim:cfg.latent_dim + K].argmax(axis=1))
    cont = torch.from_numpy(g_in[:, cfg.latent_dim + K:])
    targets = torch.from_numpy(np.r_[np.full(B, cfg.real_label), np.zeros(B)][:, None])
    fake = h[B:2 * B]
    loss = (F.binary_cross_entropy_with_logits(h[:2 * B, :1], targets)
            + cfg.lambda_cat * F.cross_entropy(fake[:, 1:1 + K], c1)
            + cfg.lambda_con * 0.5 * ((fake[:, 1 + K:] - cont) ** 2).sum(dim=1).mean()
            + cfg.lambda_label * F.cross_entropy(h[2 * B:, 1:1 + K], y))
    loss.backward()
    assert rec["losses"][0] == pytest.approx(loss.item(), rel=1e-12)
    err = gc.rel_error(rec["gD"], torch.cat([p.grad.reshape(-1) for p in params]).numpy())
    gc.measured("torch semi-supervised InfoGAN D+Q grads", err)
    assert err < 1e-10, err


# ---------------------------------------------------------------- training, checkpoints, CLI

def digit_patterns(n, seed=0):
    """Fake 'digits': each class lights its own block of pixels, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    x = rng.uniform(-1, -0.6, (n, 784)).astype(np.float32)
    for k in range(10):
        x[labels == k, k * 78:(k + 1) * 78] = 0.9
    return x, labels


def test_labels_teach_q_to_read_c1_as_the_label():
    """With 20 labelled images of 10 separable classes, Q reads the class of images
    it never saw as their label; without labels its values carry no such names."""
    x, labels = digit_patterns(640)
    accuracy = {}
    for n in (0, 20):
        cfg = InfoGANConfig(g_hidden=(32,), d_hidden=(64, 32), batch_size=32, n_labels=n)
        model = InfoGAN(cfg, seed=0)
        if n:
            chosen = model.use_labels(x, labels, seed=0)
            assert len(chosen) == 20 and np.all(np.bincount(labels[chosen]) == 2)
        train(model, x, epochs=3, progress=False)
        unseen = np.setdiff1d(np.arange(640), model.labelled.index if n else [])
        p_c1, _ = model.read_codes(x[unseen])
        accuracy[n] = float((p_c1.argmax(axis=1) == labels[unseen]).mean())
        assert len(model.label_log) == (60 if n else 0)
    assert accuracy[20] > 0.95 and accuracy[0] < 0.5, accuracy


@pytest.fixture
def labelled_checkpoint(tmp_path):
    x, labels = digit_patterns(64)
    cfg = InfoGANConfig(g_hidden=(16,), d_hidden=(16,), batch_size=16, n_labels=10, ema_decay=0.99)
    model = InfoGAN(cfg, seed=0)
    model.use_labels(x, labels, seed=0)
    train(model, x, epochs=1, progress=False)
    return checkpoint.save(model, tmp_path / "ss.npz", epoch=1, seed=0), model


def test_checkpoint_keeps_n_labels_and_samples_from_the_average(labelled_checkpoint):
    path, model = labelled_checkpoint
    loaded, meta = checkpoint.load(path)
    assert loaded.config == model.config and loaded.config.n_labels == 10
    g_in = model.sample_noise(5, np.random.default_rng(1))
    np.testing.assert_array_equal(loaded.generate(g_in), model.generate(g_in))
    assert loaded.sampler is loaded.G_average.net
    for a, b in zip(loaded.read_codes(model.generate(g_in)), model.read_codes(model.generate(g_in))):
        np.testing.assert_array_equal(a, b)


def test_cli_sample_code_on_a_labelled_checkpoint(run_cli, labelled_checkpoint, tmp_path):
    path, model = labelled_checkpoint
    out = tmp_path / "c1_3.npy"
    r = run_cli("sample", "--checkpoint", path, "--n", 4, "--seed", 2, "--code", "c1=3",
                "--code", "c2=-1", "--out", out)
    assert r.returncode == 0, r.stderr
    from npgan.plot import to_uint8
    g_in = model.set_codes(model.sample_noise(4, np.random.default_rng(2)), {"c1": 3, "c2": -1.0})
    np.testing.assert_array_equal(np.load(out), to_uint8(model.generate(g_in)).reshape(-1, 28, 28))


def test_exporter_names_a_labelled_generator_apart(labelled_checkpoint):
    from npgan import export

    _, model = labelled_checkpoint
    data = export.export_generator(model, source="runs/x/epoch_001.npz", n_probe=50,
                                   name="infogan-labels10")
    assert data["name"] == "infogan-labels10" and data["nLabels"] == 10   # the widget's switch says so
    assert 'window.npganDemoData["infogan-labels10"]' in export.data_script(data)
    assert export.export_generator(model, source="x", n_probe=20)["name"] == "infogan"
    unsupervised = InfoGAN(InfoGANConfig(g_hidden=(16,), d_hidden=(16,)), seed=0)
    assert export.export_generator(unsupervised, source="x", n_probe=20)["nLabels"] == 0


@pytest.mark.parametrize("args,needle", [
    (["--labels", "15"], "--labels must be a multiple of 10 (the same number of each digit) from 0 to 50,000"),
    (["--labels", "-10"], "--labels must be a multiple of 10"),
    (["--labels", "50010"], "from 0 to 50,000 (the training images before the validation split), got 50010"),
    (["--labels", "200", "--subset", "100"], "from 0 to 100 (the training images before the validation "
                                             "split, within --subset), got 200"),
    (["--labels", "ten"], "invalid int value: 'ten'"),
    (["--labels", "10", "--model", "gan"], "--labels needs --model infogan"),
])
def test_cli_train_labels_wrong_use_is_one_line(run_cli, tmp_path, args, needle):
    args = ["train", "--model", "infogan", *args] if "--model" not in args else ["train", *args]
    r = run_cli(*args, "--out", tmp_path / "o")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("error: ") and needle in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()


def test_cli_train_with_labels_on_real_mnist(run_cli, mnist_dir, tmp_path):
    """--labels 20 --subset 640: 2 of each digit from the 640 images, chosen by the seed;
    the checkpoint says n_labels, and the same choice is made again from (labels, seed)."""
    from npgan import load_mnist

    r = run_cli("--data-dir", mnist_dir.parent, "train", "--model", "infogan", "--labels", "20",
                "--subset", "640", "--epochs", "1", "--seed", "3", "--quiet", "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    model, meta = checkpoint.load(tmp_path / "run" / "checkpoint.npz")
    assert model.config.n_labels == 20 and meta["seed"] == 3 and model.opt_d.t == 10
    _, labels = load_mnist("train", subset=640, directory=mnist_dir.parent)
    chosen = choose_labelled(labels, 20, seed=meta["seed"])
    assert chosen.max() < 640 and np.all(np.bincount(labels[chosen], minlength=10) == 2)
    # too few of one digit in a small subset: said in one line, before training
    r = run_cli("--data-dir", mnist_dir.parent, "train", "--model", "infogan", "--labels", "60",
                "--subset", "64", "--out", tmp_path / "small")
    assert r.returncode == 2 and "need 6 of each value" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_label_shift_shows_q_each_labelled_image_moved():
    """label_shift=2: the labelled rows D reads are the chosen images moved by up to ±2 pixels
    (the uncovered border black, −1), a new shift each step; 0 keeps them as they are."""
    x, labels = digit_patterns(64)
    x = np.where(x > 0, x, -1.0).astype(np.float32)     # a black background, as MNIST's
    seen = {}
    for shift in (0, 2):
        cfg = InfoGANConfig(g_hidden=(16,), d_hidden=(16,), batch_size=16, n_labels=10, label_shift=shift)
        model = InfoGAN(cfg, seed=0)
        model.use_labels(x, labels, seed=0)
        model.train_step(x[:16])
        seen[shift] = model._buffer("d_in", (48, IMAGE_SIZE), model.dtype)[32:].copy()
    originals = {tuple(row) for row in model.labelled.images}
    assert all(tuple(row) in originals for row in seen[0])
    moved = [row for row in seen[2] if tuple(row) not in originals]
    assert len(moved) > 8                                  # most rows moved (1 in 25 shifts is none)
    for row in moved:                                      # each one a shifted labelled image
        img = row.reshape(28, 28)
        assert any(np.array_equal(img[max(dy, 0):28 + min(dy, 0), max(dx, 0):28 + min(dx, 0)],
                                  o.reshape(28, 28)[max(-dy, 0):28 + min(-dy, 0), max(-dx, 0):28 + min(-dx, 0)])
                   for o in model.labelled.images for dy in range(-2, 3) for dx in range(-2, 3))
    with pytest.raises(ValueError, match="label_shift"):
        InfoGANConfig(n_labels=10, label_shift=-1).validate()


def test_cli_evaluate_reports_c1_of_a_labelled_checkpoint(run_cli, mnist_dir, tmp_path):
    """`npgan evaluate` on a semi-supervised InfoGAN trained by the CLI: c1's matched
    accuracy and its share drawn as labelled, Q's reading of the test digits and the
    codes' digit-change rates, the same figures as codes.evaluate_codes of the
    checkpoint's generator (the average of G's weights) with that seed."""
    import json

    from npgan import codes, metrics

    r = run_cli("--data-dir", mnist_dir.parent, "train", "--model", "infogan", "--labels", "20",
                "--subset", "640", "--epochs", "1", "--quiet", "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    path = tmp_path / "run" / "checkpoint.npz"
    out = tmp_path / "eval.json"
    r = run_cli("--data-dir", mnist_dir.parent, "evaluate", "--checkpoint", path, "--seed", "1",
                "--json", out)
    assert r.returncode == 0, r.stderr
    printed = json.loads(out.read_text(encoding="utf-8"))
    model, _ = checkpoint.load(path)
    assert model.config.n_labels == 20
    expected = codes.c1_accuracy(model, seed=1, evaluator=metrics.load_evaluator())
    c1 = printed["codes"]["c1"]
    assert printed["c1_matched_accuracy"] == c1["matched_accuracy"] == expected["matched_accuracy"]
    assert c1["accuracy_as_labelled"] == expected["accuracy_as_labelled"]
    assert c1["digit_of_value"] == expected["digit_of_value"] and sorted(c1["digit_of_value"]) == list(range(10))
    assert 0 <= c1["q_accuracy"] <= 1 and 0.1 <= c1["q_sure"] <= 1
    for code in ("c2", "c3"):
        assert 0 <= printed["codes"][code]["digit_change"] <= 1 and 0 <= printed["codes"][code]["digit_change_wide"] <= 1
