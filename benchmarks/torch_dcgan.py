"""The DCGAN step in PyTorch (CPU, float32), for the speed benchmark.

Same architecture as npgan.dcgan (widths from the config):

    G: z → Linear → C1×7×7 → BN → ReLU → ConvT 4×4 s2 → C2×14×14 → BN → ReLU
         → ConvT 4×4 s2 → 1×28×28 → tanh
    D: Conv 4×4 s2 → D1×14×14 → LeakyReLU [→ dropout] → Conv 4×4 s2 → D2×7×7 [→ BN]
         → LeakyReLU [→ dropout] … (one conv per width of d_channels: 7×7 → 3×3 → 1×1)
         → Linear, with BN and dropout as d_batch_norm and d_dropout say

One step as npgan's: D on the real batch and on the fake batch (BatchNorm
statistics of each batch apart, d_bn_batches="separate"), Adam; then the same
fakes through the UPDATED D with targets 1, D frozen, updating G.
"""

import torch
from torch import nn
from torch.nn import functional as F


def make_generator(c):
    c1, c2 = c.g_channels
    return nn.Sequential(nn.Linear(c.latent_dim, c1 * 49), nn.Unflatten(1, (c1, 7, 7)),
                         nn.BatchNorm2d(c1), nn.ReLU(),
                         nn.ConvTranspose2d(c1, c2, 4, 2, 1), nn.BatchNorm2d(c2), nn.ReLU(),
                         nn.ConvTranspose2d(c2, 1, 4, 2, 1), nn.Tanh(), nn.Flatten())


def make_discriminator(c):
    layers, c_in, size = [nn.Unflatten(1, (1, 28, 28))], 1, 28
    for i, c_out in enumerate(c.d_channels):
        layers.append(nn.Conv2d(c_in, c_out, 4, 2, 1))
        layers += [nn.BatchNorm2d(c_out)] if c.d_batch_norm and i > 0 else []
        layers.append(nn.LeakyReLU(c.leaky_slope))
        layers += [nn.Dropout(c.d_dropout)] if c.d_dropout > 0 else []
        c_in, size = c_out, size // 2
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c_in * size * size, 1))


class TorchDCGAN:
    def __init__(self, config, seed=0, threads=2):
        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        self.config = c = config
        self.G, self.D = make_generator(c), make_discriminator(c)
        betas = (c.beta1, c.beta2)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=c.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=c.lr_d, betas=betas)

    def train_step(self, x_real, labels=None):
        B = x_real.shape[0]
        fake = self.G(torch.randn(B, self.config.latent_dim))
        real_logits, fake_logits = self.D(x_real), self.D(fake.detach())
        d_loss = 0.5 * (F.binary_cross_entropy_with_logits(
            real_logits, torch.full((B, 1), self.config.real_label))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros(B, 1)))
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        self.D.requires_grad_(False)
        g_loss = F.binary_cross_entropy_with_logits(self.D(fake), torch.ones(B, 1))
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)
        return d_loss.item(), g_loss.item()
