"""DCGAN: a convolutional GAN for 28×28 images (chapter 21.6; Radford et al. 2016).

    G: z → Linear → C1×7×7 (BN, ReLU) → ConvT 4×4 s2 → C2×14×14 (BN, ReLU)
         → ConvT 4×4 s2 → 1×28×28, tanh
    D: 1×28×28 → Conv 4×4 s2 → D1×14×14 (LeakyReLU 0.2)
         → Conv 4×4 s2 → D2×7×7 (BN, LeakyReLU 0.2) [→ Conv 4×4 s2 → D3×3×3 (BN,
         LeakyReLU 0.2), the book's D, → Conv 4×4 s2 → D4×1×1 (…)] → Linear → logit
       (d_fc: hidden Linear layers with LeakyReLU before that last Linear; off in the book)

Options the appendix's lever board tried, all off in the book: kernel_size 5 (5×5
kernels, padding 2; G's transposed convs add output_padding 1 to reach 14 and 28);
g_linear_channels (G's Linear gives that many 7×7 maps, and a stride-1 3×3 conv
takes them down to C1); d_stride1_conv (a 3×3 stride-1 conv after D's conv that
makes the 7×7 maps); d_spectral_norm (every conv and Linear of D divided by its
spectral norm, spectral.py); loss "hinge" (losses.hinge_d_loss, hinge_g_loss).

At the interface everything is as in the MLP GAN: images are flat (B, 784)
rows in [−1, 1], G and D are ``layers.Sequential`` networks (a Reshape inside D
and a Flatten at the end of G), and GAN.train_step runs unchanged. So
npgan.train, checkpoint, plot and metrics work with a DCGAN as they are.
"""

from dataclasses import dataclass

import numpy as np

from . import checks, models
from .batchstd import MinibatchStd
from .batchnorm import BatchNorm, set_batch_groups
from .conv import Conv2d, ConvTranspose2d, Flatten, Reshape, Upsample, conv_out_size
from .gan import GAN, GANConfig
from .layers import Dropout, LeakyReLU, Linear, ReLU, Sequential, Tanh
from .losses import hinge_d_loss, hinge_g_loss
from .spectral import SpectralNorm


@dataclass
class ConvNets(GANConfig):
    """GANConfig plus the fields that shape the convolutional G and D below. The
    DCGAN's config and InfoGAN's (arch="conv") both take them from here."""

    g_channels: tuple = (64, 32)    # G's channels at 7×7 and at 14×14
    d_channels: tuple = (32, 64)    # D's channels at 14×14 and at 7×7 (a third: 3×3, a fourth: 1×1)
    d_fc: tuple = ()                # hidden Linear layers between D's last conv and its logit (LeakyReLU)
    batch_norm: bool = True         # BN in G (after the Linear and the first ConvT)
    d_batch_norm: bool = True       # BN in D (after every conv but the first)
    g_upsample: str = "transposed"  # G's ×2 steps: 4×4 ConvT stride 2, or "resize" (nearest ×2, 3×3 conv)
    kernel_size: int = 4            # G's ConvT and D's convs: 4×4 (padding 1) or 5×5 (padding 2)
    g_linear_channels: int = 0      # G's Linear gives this many 7×7 maps, a 3×3 conv then C1; 0: C1 itself
    d_stride1_conv: bool = False    # a 3×3 stride-1 conv after the conv that makes D's 7×7 maps
    d_spectral_norm: bool = False   # D's convs and Linears divided by their spectral norm (spectral.py)

    def validate_conv_nets(self):
        checks.sizes(self, "g_channels")
        checks.sizes(self, "d_channels")
        checks.sizes(self, "d_fc")
        if len(self.g_channels) != 2 or len(self.d_channels) not in (2, 3, 4):
            raise ValueError(f"{type(self).__name__} needs two widths in g_channels and two to "
                             f"four in d_channels, got {self.g_channels} and {self.d_channels}")
        checks.flag(self, "batch_norm")
        checks.flag(self, "d_batch_norm")
        checks.one_of(self, "g_upsample", ("transposed", "resize"))
        checks.whole_number(self, "kernel_size", 4, 5)
        checks.whole_number(self, "g_linear_channels", 0)
        checks.flag(self, "d_stride1_conv")
        checks.flag(self, "d_spectral_norm")


@dataclass
class DCGANConfig(ConvNets):
    """GANConfig plus the convolutional widths (ConvNets). Of GANConfig, ``g_hidden``,
    ``d_hidden`` and ``activation`` are unused: G uses ReLU and D LeakyReLU, as
    DCGAN's guidelines say."""

    d_bn_batches: str = "separate"  # D's BN statistics: real and fake halves apart, or "mixed"
    dataset: str = "mnist"          # "mnist" or "fashion" (Fashion-MNIST): what it learns, how it is scored
    d_dropout: float = 0.0          # dropout after each of D's LeakyReLUs (0: none, as DCGAN)
    ema_decay: float = 0.0          # samples from G itself: the book's DCGAN was measured so
    d_batch_std: int = 0            # D's last Linear also reads its batch's spread (batchstd.py); 0: off
    loss: str = "bce"               # "bce" (eq-dloss, eq-gloss) or "hinge" (Miyato et al. 2018)
    g_hidden: tuple = ()
    d_hidden: tuple = ()

    def validate(self):
        checks.one_of(self, "dataset", ("mnist", "fashion"))
        self.validate_conv_nets()
        checks.one_of(self, "d_bn_batches", ("separate", "mixed"))
        checks.one_of(self, "loss", ("bce", "hinge"))
        return super().validate()   # which counts the weights (num_parameters)

    def num_parameters(self):
        return conv_parameters(self, self.latent_dim, 1)


def d_padding(cfg):
    """Padding of D's stride-2 convs and G's ConvTs: 1 for 4×4 kernels, 2 for 5×5."""
    return (cfg.kernel_size - 1) // 2


def d_map_sizes(cfg):
    """Sizes of D's maps after each stride-2 conv: 14, 7, 3, 1 (5×5 kernels: 14, 7, 4, 2)."""
    sizes = [28]
    for _ in cfg.d_channels:
        sizes.append(conv_out_size(sizes[-1], cfg.kernel_size, 2, d_padding(cfg)))
    return sizes[1:]


def d_linear_inputs(cfg):
    """Input sizes of D's Linear layers (the hidden ones of d_fc, then the last): first
    the flattened last maps (per channel, + 1 for the batch spread)."""
    d = cfg.d_channels
    return (d[-1] * d_map_sizes(cfg)[-1] ** 2 + (1 if cfg.d_batch_std else 0), *cfg.d_fc)


def conv_parameters(cfg, n_in, n_out):
    """Weights and biases of the G and D below, from cfg's widths alone: G reads
    n_in numbers, D's last Linear has n_out outputs (InfoGAN's conv nets use it too)."""
    (g1, g2), d = cfg.g_channels, cfg.d_channels
    g0 = cfg.g_linear_channels or g1                        # G's maps out of its Linear
    g_extra = 9 * g0 * g1 + g1 if cfg.g_linear_channels else 0   # its 3×3 conv down to g1
    g_bn = 2 * (g1 + g2 + (g0 if g_extra else 0)) if cfg.batch_norm else 0   # γ and β per channel
    d_extra = 9 * d[1] * d[1] + d[1] if cfg.d_stride1_conv else 0            # 3×3 at 7×7
    d_bn = 2 * (sum(d[1:]) + (d[1] if d_extra else 0)) if cfg.d_batch_norm else 0   # all but the first conv
    kk = cfg.kernel_size ** 2
    k = 9 if cfg.g_upsample == "resize" else kk             # G's 3×3, or its ConvT kernels
    d_convs = (kk + 1) * d[0] + sum(kk * a * b + b for a, b in zip(d, d[1:])) + d_extra
    fc = (*d_linear_inputs(cfg), n_out)                     # the Linear layers' sizes
    return ((n_in + 1) * g0 * 49 + g_extra + k * g1 * g2 + g2 + k * g2 + 1 + g_bn
            + d_convs + d_bn + sum((a + 1) * b for a, b in zip(fc, fc[1:])))


def build_generator(cfg, rng, dtype, n_in=None, batch_last=True):
    """G of the diagram above; ``n_in``: length of its input (default cfg.latent_dim;
    InfoGAN's conv G also takes its codes). ``batch_last``: the maps between the
    Reshape and the Flatten are (C, H, W, B), which saves the transposes between
    layers (conv.py); False: NCHW, the same arithmetic (the tests compare the two)."""
    c1, c2 = cfg.g_channels
    bn = cfg.batch_norm
    n_in = cfg.latent_dim if n_in is None else n_in
    last = {"batch_last": batch_last}

    def up(c_in, c_out, gain=np.sqrt(2.0)):   # 7 → 14 → 28
        if cfg.g_upsample == "resize":   # against checkerboard artefacts (21.6.2)
            return [Upsample(2, **last), Conv2d(c_in, c_out, 3, 1, 1, rng, gain, dtype, **last)]
        k, p = cfg.kernel_size, d_padding(cfg)   # 5×5: 7 → 13 without output padding 1
        return [ConvTranspose2d(c_in, c_out, k, 2, p, rng, gain, dtype, **last,
                                output_padding=2 + 2 * p - k)]

    c0 = cfg.g_linear_channels or c1
    layers = [Linear(n_in, c0 * 7 * 7, rng, "he", dtype=dtype), Reshape(c0, 7, 7, **last)]
    layers += [BatchNorm(c0, dtype=dtype, **last)] if bn else []
    if cfg.g_linear_channels:   # the wide 7×7 maps, cheap in a Linear, brought down to c1
        layers += [ReLU(), Conv2d(c0, c1, 3, 1, 1, rng, np.sqrt(2.0), dtype, **last)]
        layers += [BatchNorm(c1, dtype=dtype, **last)] if bn else []
    layers += [ReLU(), *up(c1, c2)]
    layers += [BatchNorm(c2, dtype=dtype, **last)] if bn else []
    layers += [ReLU(), *up(c2, 1, gain=1.0), Tanh(), Flatten(**last)]
    return Sequential(layers)


def build_discriminator(cfg, rng, dtype, n_out=1, batch_last=True):
    """D of the diagram above; ``n_out`` outputs of its last Linear (1: the logit;
    InfoGAN's conv D adds Q's outputs). ``batch_last``: as for build_generator."""
    slope = cfg.leaky_slope
    gain = np.sqrt(2 / (1 + slope**2))
    last = {"batch_last": batch_last}

    def dropout():   # after each LeakyReLU, if asked for (the MLP GAN's D needed it)
        return [Dropout(cfg.d_dropout, rng)] if cfg.d_dropout > 0 else []

    def normed(layer):   # W/σ(W) if asked for; its u drawn after the layer's weights
        return SpectralNorm(layer, rng) if cfg.d_spectral_norm else layer

    def conv(c_in, c_out, k, stride, pad, i):   # conv (BN) LeakyReLU (dropout)
        layers = [normed(Conv2d(c_in, c_out, k, stride, pad, rng, gain, dtype, **last))]
        layers += [BatchNorm(c_out, dtype=dtype, **last)] if cfg.d_batch_norm and i > 0 else []
        return layers + [LeakyReLU(slope), *dropout()]

    # 28 → 14 → 7 (→ 3 → 1 with a third and a fourth width): each 4×4 stride-2 conv
    # widens what one unit sees, 4 → 10 → 22 → 46 pixels (the image is 28)
    layers, c_in = [Reshape(1, 28, 28, **last)], 1
    for i, c_out in enumerate(cfg.d_channels):
        layers += conv(c_in, c_out, cfg.kernel_size, 2, d_padding(cfg), i)
        if i == 1 and cfg.d_stride1_conv:   # one more look at the 7×7 maps, 3×3 at stride 1
            layers += conv(c_out, c_out, 3, 1, 1, i)
        c_in = c_out
    # the batch's spread (batchstd.py) as one more input of the last Linear, if asked for
    spread = [MinibatchStd(cfg.d_batch_std)] if cfg.d_batch_std else []
    layers += [Flatten(**last), *spread]
    n = d_linear_inputs(cfg)[0]
    for width in cfg.d_fc:   # hidden Linear layers that see all of the last maps at once
        layers += [normed(Linear(n, width, rng, "he", gain, dtype)), LeakyReLU(slope), *dropout()]
        n = width
    return Sequential(layers + [normed(Linear(n, n_out, rng, "xavier", dtype=dtype))])


class DCGAN(GAN):
    """A GAN whose G and D are convolutional; trained by GAN.train_step."""

    name = "dcgan"

    @staticmethod
    def accepts(config):
        return isinstance(config, DCGANConfig) and config.n_classes == 0

    def __init__(self, config=None, seed=0):
        self.config = config = config or DCGANConfig()
        if config.n_classes:
            raise ValueError("the DCGAN here is unconditional: use n_classes=0")
        super().__init__(config, seed)

    def build_networks(self):
        return (build_generator(self.config, self.rng, self.dtype),
                build_discriminator(self.config, self.rng, self.dtype))

    GENERATE_ROWS = 500   # G's work buffers grow with the batch: generate in chunks

    def generate(self, z, labels=None):
        """Images G(z), (N, 784) in [-1, 1], a fresh array; in chunks of 500 rows,
        so that drawing 10,000 samples for the evaluation needs no 10,000-row
        im2col buffers (about 1 GB at the book's widths)."""
        if labels is not None:
            raise ValueError("the DCGAN takes no labels")
        self.check_noise(z)
        n = self.GENERATE_ROWS
        return np.concatenate([super(DCGAN, self).generate(z[i:i + n]) for i in range(0, len(z), n)])

    def train_step(self, x_real, labels=None):
        """GAN.train_step, with D's batch normalisation told how to treat its batch.

        The D step feeds D one batch of 2B rows, real on top and fakes below.
        With "separate" each half is normalised with its own statistics, as
        DCGAN's code and most of its successors do (a batch of reals, then a
        batch of fakes): then the fakes are normalised the same way in the D
        step and in the G step (where D sees the B fakes alone), and D cannot
        tell the two apart by how the other half shifted the batch mean.
        "mixed" normalises all 2B rows together. Measured (widths 64/32, seed 0,
        one epoch of MNIST): "mixed" collapsed, one digit took 92 % of 10,000
        samples (FD 283); "separate" kept every digit (shares 3.6–20 %, FD 72).
        """
        set_batch_groups(self.D, x_real.shape[0] if self.config.d_bn_batches == "separate" else None)
        return super().train_step(x_real, labels)

    def d_loss(self, logits, B):
        """GAN.d_loss, or with loss="hinge" the hinge loss of the B real rows on top
        and the B fakes below (losses.hinge_d_loss)."""
        if self.config.loss == "hinge":
            return hinge_d_loss(logits, B)
        return super().d_loss(logits, B)

    def g_loss(self, logits, B):
        """GAN.g_loss, or with loss="hinge" −mean D(G(z)) (losses.hinge_g_loss)."""
        if self.config.loss == "hinge":
            return hinge_g_loss(logits)
        return super().g_loss(logits, B)


def book_recipe():
    """The book's DCGAN (chapter 21.6), chosen from these measurements (MNIST,
    seed 0, batch 64, one BLAS thread; FD with the chapter's evaluator, floor 2.34):

    * BN in D on real and fake halves apart starves a mode: digit 1 fell to 1.7 %
      of the samples after 3 epochs and 0.7 % after 6 (widths 32/16, FD 69 → 76);
      normalised together (d_bn_batches="mixed") one digit took 92 % after one epoch.
      Without BN in D, with dropout 0.3 as the MLP GAN's D: FD 62 after 3 epochs,
      52 after 9, 46 after 15, every digit 5.3–15.7 % (widths 32/16).
    * Widths 64/32 (D without BN): FD 58 after 3 epochs against 62 at 32/16, but a
      step costs 2.5 times as much (39 vs 16 ms, 1 thread), so in the 10-minute budget
      32/16 trains about 30 epochs where 64/32 trains 15.
    * With two convs in D, a unit of its last maps sees 10×10 of the 28×28 pixels, and
      the last Linear only adds up 49 such local verdicts: clean strokes, shapes that
      are no digit. A third conv (7×7 → 3×3, units that see 22×22) halved the FD
      after 30 epochs on the validation images, 39.6 → 20.8 (experiments/scoreboard-e30.csv);
      a fourth (→ 1×1) gave 20.6 with a digit at 16.8 %, more than the 15 % allowed;
      on the two-conv D, twice the widths of D or G, the average of G's weights or
      the batch spread stayed within 38.0–40.7. A step costs 1.27 times the
      two-conv one: 30 epochs took 681 s beside the Fashion-MNIST run (one BLAS
      thread each, as `make runs` trains them), over the 10-minute budget, so the
      book trains 25.
    * The rate: DCGAN's 2e-4 suits runs of many more epochs than 25. On the three-conv
      D after 6 epochs (validation FD): 50.2 at 2e-4, 37.9 at 5e-4, 29.1 at 1e-3,
      21.2 at 2e-3, 24.0 at 4e-3. After 30 epochs, 2e-3 gave 14.2 against 20.8, and
      letting both rates fall linearly to 0 over the last third (lr_decay) 12.8.
      Neither the average of G's weights on top (12.8 again) nor a G of twice the
      widths (20.2 against 21.2 after 6 epochs, each step about 1.5 times the cost)
      moved it much (experiments/scoreboard-e6.csv and -e30.csv). Nor did, at 2e-3
      after 6 epochs: dropout 0.5 (27.7), real targets 1 instead of 0.9 (21.4), a
      fourth conv (19.1), batches of 32 (19.3) or a G of 64/16 channels (19.7),
      each of the last three with dearer epochs.
    * Time alone does not close the gap to the MLP GAN: the recipe trained for 60 epochs
      (1104 s, twice the budget) reached 11.1 on the validation images against 12.8 after
      30 (experiments/scoreboard-e60.csv).
    * The batch spread (batchstd.py), the MLP GAN's strongest lever, on this recipe: 17.8
      against 19.5 after 8 epochs (validation FD, one seed; experiments/scoreboard-e8.csv).
      Measured after the book's runs were fixed; 9 % would not close a gap of 3.5 times.
      On the same board: a hidden Linear of 256 in D 18.2, G's ×2 steps as nearest ×2 and
      a 3×3 conv 19.3, D of twice the widths (32/64/128) 20.9, the last two each a step
      about 1.5 times as dear.
    * Other implementations' levers (wider 7×7 maps in G, 5×5 kernels, hinge loss with
      spectral norm, TTUR, …), each alone for 10 epochs: experiments/dcgan_levers.csv.
    """
    return DCGANConfig(g_channels=(32, 16), d_channels=(16, 32, 64), d_batch_norm=False,
                       d_dropout=0.3, lr_d=2e-3, lr_g=2e-3, lr_decay=1 / 3)


models.register("dcgan", DCGANConfig, DCGAN, book_recipe, book_epochs=25)
