"""The same GAN / CGAN step in PyTorch (CPU, float32), for the speed benchmark.

Networks and step follow npgan's config (npgan.book_config):

    D: 784(+10) → 512 → 256 → 1 logit, hidden activation + dropout after each hidden layer
    G: 100(+10) → 256 → 512 → 784, hidden activation, tanh
    One step: D on cat[real, fake] with targets [real_label; 0]; then the same
    fakes through the UPDATED D with targets 1, updating G only.

D's parameters are frozen (requires_grad False) during the G step, so autograd
computes only dL/dx through D there, exactly the 22 matrix products of
npgan's step. PyTorch is used only here and in the tests, never by npgan.
"""

import torch
from torch import nn
from torch.nn import functional as F

IMAGE_SIZE = 28 * 28


def _activation(config):
    if config.activation == "leaky_relu":
        return nn.LeakyReLU(config.leaky_slope)
    return nn.ReLU()


def make_generator(config):
    k = config.n_classes
    h1, h2 = config.g_hidden
    return nn.Sequential(nn.Linear(config.latent_dim + k, h1), _activation(config),
                         nn.Linear(h1, h2), _activation(config),
                         nn.Linear(h2, IMAGE_SIZE), nn.Tanh())


def make_discriminator(config):
    k = config.n_classes
    h1, h2 = config.d_hidden
    layers = [nn.Linear(IMAGE_SIZE + k, h1), _activation(config)]
    if config.d_dropout:
        layers.append(nn.Dropout(config.d_dropout))
    layers += [nn.Linear(h1, h2), _activation(config)]
    if config.d_dropout:
        layers.append(nn.Dropout(config.d_dropout))
    layers.append(nn.Linear(h2, 1))  # a logit: the sigmoid is in the loss
    return nn.Sequential(*layers)


class TorchGAN:
    """GAN or CGAN (config.n_classes), trained with Adam or SGD."""

    def __init__(self, config, optimizer="adam", seed=0, threads=2):
        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        self.config = config
        self.G, self.D = make_generator(config), make_discriminator(config)
        if optimizer == "adam":
            betas = (config.beta1, config.beta2)
            self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.lr_g, betas=betas)
            self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.lr_d, betas=betas)
        elif optimizer == "sgd":
            self.opt_g = torch.optim.SGD(self.G.parameters(), lr=config.lr_g)
            self.opt_d = torch.optim.SGD(self.D.parameters(), lr=config.lr_d)
        else:
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")

    def train_step(self, x_real, labels=None):
        """x_real: float32 tensor (B, 784); labels: int64 tensor (B,) for a CGAN.
        Returns (D loss, G loss, mean D(x), mean D(G(z)))."""
        B, k = x_real.shape[0], self.config.n_classes
        z = torch.randn(B, self.config.latent_dim)
        if k:
            fake_c = F.one_hot(torch.randint(0, k, (B,)), k).float()
            z = torch.cat([z, fake_c], dim=1)
            x_real = torch.cat([x_real, F.one_hot(labels, k).float()], dim=1)
        fake = self.G(z)
        if k:
            fake = torch.cat([fake, fake_c], dim=1)

        # D step: real labelled real_label, fake labelled 0; no gradient into G
        targets = torch.cat([torch.full((B, 1), self.config.real_label), torch.zeros(B, 1)])
        logits = self.D(torch.cat([x_real, fake.detach()]))
        d_loss = F.binary_cross_entropy_with_logits(logits, targets)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()

        # G step: the same fakes through the updated D, labelled 1; D frozen
        self.D.requires_grad_(False)
        g_loss = F.binary_cross_entropy_with_logits(self.D(fake), torch.ones(B, 1))
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)

        prob = torch.sigmoid(logits.detach())
        return d_loss.item(), g_loss.item(), prob[:B].mean().item(), prob[B:].mean().item()
