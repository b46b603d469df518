"""The D step and the G step against PyTorch autograd (float64), same weights,
same inputs, same noise, same dropout masks; then whole train_steps with Adam
against torch.optim.Adam.

PyTorch is only a test dependency (torch==2.13.0 CPU in the venv, installed by
`make test-unit`); without it these tests are skipped with the reason shown.
"""

import numpy as np
import pytest

from npgan import GANConfig, build

torch = pytest.importorskip("torch", reason="PyTorch is not installed: these tests compare "
                            "npgan with torch autograd (pip install torch==2.13.0)")
F = torch.nn.functional

B = 16


class TorchMLP:
    """The same MLP in PyTorch: leaf tensors W, b per layer, built from a flat vector."""

    def __init__(self, theta, shapes, slope, output=None, batch_std=0, projection_classes=0):
        self.params, start = [], 0
        self.batch_std = batch_std   # > 0: minibatch standard deviation before the last layer
        for n_in, n_out in shapes:
            W = torch.tensor(theta[start:start + n_in * n_out].reshape(n_in, n_out).copy(),
                             requires_grad=True)
            start += n_in * n_out
            b = torch.tensor(theta[start:start + n_out].copy(), requires_grad=True)
            start += n_out
            self.params += [W, b]
        self.V = None   # a projection D (projection.py): class vectors (k, F) after the last b
        if projection_classes:
            k, F_in = projection_classes, shapes[-1][0]
            self.V = torch.tensor(theta[start:start + k * F_in].reshape(k, F_in).copy(), requires_grad=True)
        self.slope, self.output = slope, output

    def __call__(self, x, masks=None, labels=None):
        n = len(self.params) // 2
        for i in range(n):
            if self.batch_std and i == n - 1:
                g = self.batch_std
                spread = torch.sqrt(x.reshape(-1, g, x.shape[1]).var(dim=1, unbiased=False) + 1e-8)
                x = torch.cat([x, spread.mean(dim=1).repeat_interleave(g)[:, None]], dim=1)
            h = x
            x = x @ self.params[2 * i] + self.params[2 * i + 1]
            if self.V is not None and i == n - 1:   # + h · v_y, v_y looked up by each row's label
                x = x + (h * F.embedding(labels, self.V)).sum(dim=1, keepdim=True)
            if i < n - 1:
                x = F.leaky_relu(x, self.slope) if self.slope else F.relu(x)
                if masks is not None:
                    x = x * torch.from_numpy(masks[i])
            elif self.output == "tanh":
                x = torch.tanh(x)
        return x

    def flat(self, what="data"):
        params = self.params + ([self.V] if self.V is not None else [])
        parts = [(p.grad if what == "grad" else p.detach()).reshape(-1) for p in params]
        return torch.cat(parts).numpy().copy()


def torch_d(theta, rec, cfg):
    return TorchMLP(theta, rec["shapes_d"], rec["slope"], batch_std=cfg.d_batch_std,
                    projection_classes=cfg.n_classes if cfg.d_projection else 0)


def d_labels(rec, cfg, rows=slice(None)):
    """The labels of D's input rows (from its one-hot columns), for a projection D."""
    return torch.from_numpy(rec["d_in"][rows, 784:].argmax(axis=1)) if cfg.d_projection else None


def torch_reference_step(rec, cfg, x_real, labels, theta_d, theta_g):
    """D step then G step in torch, from the recorded noise/labels/masks. Returns
    (D loss, G loss, dD, dG, D weights used by the G step)."""
    k = cfg.n_classes
    D = torch_d(theta_d, rec, cfg)
    G = TorchMLP(theta_g, rec["shapes_g"], rec["slope"], "tanh")
    g_in = torch.from_numpy(rec["g_in"])
    fake_c = torch.from_numpy(rec["d_in"][x_real.shape[0]:, 784:])
    real = torch.from_numpy(x_real)
    if k:
        real = torch.cat([real, F.one_hot(torch.from_numpy(labels), k).double()], dim=1)
    fake = G(g_in)
    d_in = torch.cat([real, torch.cat([fake.detach(), fake_c], dim=1)])
    targets = torch.cat([torch.full((len(x_real), 1), cfg.real_label, dtype=torch.float64),
                         torch.zeros(len(x_real), 1, dtype=torch.float64)])
    loss_d = F.binary_cross_entropy_with_logits(D(d_in, rec["masks_d"], d_labels(rec, cfg)), targets)
    loss_d.backward()
    grad_d = D.flat("grad")
    return D, G, fake, fake_c, loss_d, grad_d


@pytest.mark.parametrize("n_classes,dropout,batch_std,projection",
                         [(0, 0.0, 0, False), (0, 0.3, 0, False), (10, 0.3, 0, False),
                          (0, 0.3, 4, False), (10, 0.0, 4, False), (10, 0.0, 4, True), (10, 0.3, 0, True)])
def test_gradients_match_torch_autograd(gc, n_classes, dropout, batch_std, projection):
    cfg = GANConfig(n_classes=n_classes, dtype="float64", batch_size=B, d_dropout=dropout,
                    real_label=0.9, d_batch_std=batch_std, d_projection=projection)
    model = build(cfg, seed=1)
    if projection:   # the class vectors start at 0: make them matter
        model.D.layers[-1].V[...] = np.random.default_rng(5).normal(0, 0.5, model.D.layers[-1].V.shape)
    rng = np.random.default_rng(2)
    x_real = rng.uniform(-1, 1, (B, 784))
    labels = rng.integers(0, 10, B) if n_classes else None
    rec = gc.record_train_step(model, x_real, labels)

    D, G, fake, fake_c, loss_d, grad_d = torch_reference_step(
        rec, cfg, x_real, labels, rec["thD0"], rec["thG0"])
    np.testing.assert_allclose(rec["d_in"][B:, :784], fake.detach().numpy(), rtol=0, atol=1e-13)
    # G step in torch: through D with the UPDATED weights, the G step's masks, targets 1
    D1 = torch_d(rec["thD1"], rec, cfg)
    loss_g = F.binary_cross_entropy_with_logits(
        D1(torch.cat([fake, fake_c], dim=1), rec["masks_g"], d_labels(rec, cfg, slice(B, None))),
        torch.ones(B, 1, dtype=torch.float64))
    loss_g.backward()
    grad_g = G.flat("grad")

    assert rec["losses"][0] == pytest.approx(loss_d.item(), rel=1e-12)
    assert rec["losses"][1] == pytest.approx(loss_g.item(), rel=1e-12)
    err_d = gc.rel_error(rec["gD"], grad_d)
    err_g = gc.rel_error(rec["gG"], grad_g)
    name = f"{'CGAN' if n_classes else 'GAN'} dropout={dropout} batch_std={batch_std}" + \
        (" projection" if projection else "")
    gc.measured(f"torch D grads [{name}]", err_d)
    gc.measured(f"torch G grads [{name}]", err_g)
    assert err_d < 1e-10 and err_g < 1e-10, (err_d, err_g)
    # the G step does not touch D: D's gradients are still those of the D step
    np.testing.assert_array_equal(rec["gD_end"], rec["gD"])
    np.testing.assert_array_equal(rec["thD_end"], rec["thD1"])


@pytest.mark.parametrize("n_classes", [0, 10])
def test_adam_train_steps_match_torch_adam(gc, n_classes):
    """Three full train_steps (the book's D: dropout and the batch spread; float64)
    against the same three steps in PyTorch with torch.optim.Adam. The networks
    are half the book's width but still have more than 2^17 weights each, the
    size above which optim.Adam may split its update between two threads."""
    cfg = GANConfig(n_classes=n_classes, dtype="float64", batch_size=B, lr_d=3e-4, lr_g=1e-4,
                    beta1=0.5, beta2=0.999, g_hidden=(128, 256), d_hidden=(256, 128))
    assert cfg.d_dropout > 0 and cfg.optimizer == "adam"
    model = build(cfg, seed=3)
    assert min(model.D.num_params(), model.G.num_params()) > 2**17
    rng = np.random.default_rng(4)
    D = G = opt_d = opt_g = None
    worst = 0.0
    for step in range(3):
        x_real = rng.uniform(-1, 1, (B, 784))
        labels = rng.integers(0, 10, B) if n_classes else None
        rec = gc.record_train_step(model, x_real, labels)
        if D is None:  # torch twins with the initial weights and their own Adam
            D = torch_d(rec["thD0"], rec, cfg)
            G = TorchMLP(rec["thG0"], rec["shapes_g"], rec["slope"], "tanh")
            opt_d = torch.optim.Adam(D.params, lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2), eps=1e-8)
            opt_g = torch.optim.Adam(G.params, lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2), eps=1e-8)
        before_d, before_g = D.flat(), G.flat()
        np.testing.assert_allclose(before_d, rec["thD0"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(before_g, rec["thG0"], rtol=0, atol=1e-12)
        # D step
        fake_c = torch.from_numpy(rec["d_in"][B:, 784:])
        real = torch.from_numpy(rec["d_in"][:B])
        fake = G(torch.from_numpy(rec["g_in"]))
        d_in = torch.cat([real, torch.cat([fake.detach(), fake_c], dim=1)])
        targets = torch.cat([torch.full((B, 1), cfg.real_label, dtype=torch.float64),
                             torch.zeros(B, 1, dtype=torch.float64)])
        opt_d.zero_grad()
        loss_d = F.binary_cross_entropy_with_logits(D(d_in, rec["masks_d"], d_labels(rec, cfg)), targets)
        loss_d.backward()
        opt_d.step()
        # G step through the updated D
        opt_g.zero_grad()
        loss_g = F.binary_cross_entropy_with_logits(
            D(torch.cat([fake, fake_c], dim=1), rec["masks_g"]), torch.ones(B, 1, dtype=torch.float64))
        loss_g.backward()
        opt_g.step()

        assert rec["losses"][0] == pytest.approx(loss_d.item(), rel=1e-12)
        assert rec["losses"][1] == pytest.approx(loss_g.item(), rel=1e-12)
        # compare the updates themselves (much smaller than the weights)
        err_d = gc.rel_error(rec["thD_end"] - rec["thD0"], D.flat() - before_d)
        err_g = gc.rel_error(rec["thG_end"] - rec["thG0"], G.flat() - before_g)
        worst = max(worst, err_d, err_g)
        assert err_d < 1e-8 and err_g < 1e-8, (step, err_d, err_g)
        # Adam's moments, in the textbook form
        m_t = torch.cat([opt_d.state[p]["exp_avg"].reshape(-1) for p in D.params]).numpy()
        v_t = torch.cat([opt_d.state[p]["exp_avg_sq"].reshape(-1) for p in D.params]).numpy()
        assert gc.rel_error(model.opt_d.m, m_t) < 1e-10
        assert gc.rel_error(model.opt_d.v, v_t) < 1e-10
    gc.measured(f"torch Adam update after 3 train_steps [{'CGAN' if n_classes else 'GAN'}]", worst)
