"""InfoGAN's settings (chapter 21.3): the config of infogan.py's model, its
defaults the book's recipe, each field checked by validate()."""

from dataclasses import dataclass

from . import checks
from .dcgan import ConvNets, conv_parameters, d_linear_inputs
from .gan import IMAGE_SIZE


@dataclass
class InfoGANConfig(ConvNets):
    """GANConfig plus the codes (and, from ConvNets, the shapes of the conv nets
    that arch="conv" uses). The defaults are the book's recipe:

    from Chen et al. 2016 on MNIST: 62 noise numbers, one 10-way code, two
    continuous codes, λ = 1 for both terms, G's learning rate 1e-3 beside D's
    2e-4 (their released code); from the book's GAN (21.1): LeakyReLU, dropout
    0.3 in D, one-sided smoothing 0.9, Adam β1 0.5, batch 64; measured here
    (experiments/infogan_runs.py; one run each, see experiments/infogan_runs.csv):
    z_std 0.5, a quieter z beside the one-hot c1. With all of this, c1's matched
    accuracy was 0.66 after 15 and 20 epochs, the best of the variants tried;
    the others with dropout reached 0.50–0.62, those without it 0.19–0.28.
    Samples come from the average of G's weights (average.py, β = 0.999): on the
    validation images it took the run's FD from 23.2 to 11.4 (6.1 times the
    real-vs-real floor instead of 12.4) and c1 from 65.3 % to 68.6 %
    (experiments/ema_elsewhere.csv, seed 0; training itself is unchanged)."""

    latent_dim: int = 62             # z, the unstructured noise
    n_cat: int = 10                  # c1 ~ Cat(n_cat), fed to G as one-hot
    n_cont: int = 2                  # c2, c3, … ~ U(−1, 1)
    lambda_cat: float = 1.0          # weight of c1's cross-entropy
    lambda_con: float = 1.0          # weight of the continuous codes' Gaussian NLL
    z_std: float = 0.5               # z ~ N(0, z_std²): how loud z is beside the codes
    lr_g: float = 1e-3
    d_dropout: float = 0.3
    ema_decay: float = 0.999         # samples from the average of G's weights (see above)
    d_batch_std: int = 0             # D (and so Q) without the batch-spread feature of the GAN's D
    arch: str = "mlp"                # "mlp" (g_hidden, d_hidden) or "conv" (DCGAN's G and D,
                                     # shaped by the ConvNets fields; BN in D is then under Q too)
    lambda_ent: float = 0.0          # weight of losses.batch_cluster_entropy of Q's c1 on REAL
                                     # images (no labels): each sure, all values used alike
    q_hidden: int = 0                # 0: Q is one linear map on D's last hidden layer; n: Q has
                                     # a hidden layer of n units of its own (qhead.py; paper: 128)
    q_batch_norm: bool = False       # with q_hidden: batch norm in Q's hidden layer (the paper's)
    lr_q: float = 0.0                # Q's own weights' learning rate (its hidden layer and outputs,
                                     # not the shared trunk nor D's logit); 0: lr_d, as the rest of D
    n_labels: int = 0                # semi-supervised (semisup.py): n labelled training images,
                                     # n/n_cat of each value, teach Q's c1 head; 0: none (no labels)
    lambda_label: float = 1.0        # weight of c1's cross-entropy on those labelled images
    label_shift: int = 0             # each time a labelled image is drawn, moved by up to ±this many
                                     # pixels (as the evaluator learns, evaluator_training.py); 0: as is

    def validate(self):
        checks.whole_number(self, "n_cat", 0, 1000)
        checks.whole_number(self, "n_cont", 0, 100)
        if self.n_cat < 2 and self.n_cont < 1:
            raise ValueError("InfoGANConfig needs codes: n_cat >= 2 or n_cont >= 1")
        checks.real_number(self, "lambda_cat", 0)
        checks.real_number(self, "lambda_con", 0)
        checks.real_number(self, "z_std", 0, low_open=True)
        checks.real_number(self, "lambda_ent", 0)
        checks.one_of(self, "arch", ("mlp", "conv"))
        checks.whole_number(self, "q_hidden", 0, 100_000)
        checks.flag(self, "q_batch_norm")
        if self.q_batch_norm and not self.q_hidden:
            raise ValueError("InfoGANConfig.q_batch_norm normalises Q's own hidden layer: set q_hidden too")
        checks.real_number(self, "lr_q", 0)
        if self.lr_q and not self.lr_d:
            raise ValueError("InfoGANConfig.lr_q is set against lr_d, which is 0: give D a learning rate")
        checks.whole_number(self, "n_labels", 0, 50_000)
        checks.real_number(self, "lambda_label", 0)
        checks.whole_number(self, "label_shift", 0, 13)
        if self.n_labels and (self.n_cat < 2 or self.n_labels % self.n_cat):
            raise ValueError(f"InfoGANConfig.n_labels must be a multiple of n_cat ({self.n_cat}: the "
                             f"same number of labelled images of each value of c1), got {self.n_labels}")
        self.validate_conv_nets()
        if self.d_batch_std:
            raise ValueError("InfoGAN's D (with Q) has no batch-spread feature: use d_batch_std=0")
        return super().validate()

    def num_parameters(self):
        n_in, n_out = self.latent_dim + self.n_cat + self.n_cont, 1 + self.n_cat + self.n_cont
        if self.arch == "conv":      # DCGAN's G and D with these input and output sizes
            n = conv_parameters(self, n_in, n_out)
            last = d_linear_inputs(self)[-1]
        else:
            n = sum((a + 1) * b for sizes in ((n_in, *self.g_hidden, IMAGE_SIZE),
                                              (IMAGE_SIZE, *self.d_hidden, n_out))
                    for a, b in zip(sizes[:-1], sizes[1:]))
            last = self.d_hidden[-1] if self.d_hidden else IMAGE_SIZE
        if self.q_hidden:            # QHead instead of D's last Linear (last → n_out)
            h = self.q_hidden
            n += (last + 1) * (1 + h) + (h + 1) * (n_out - 1) - (last + 1) * n_out
            n += 2 * h if self.q_batch_norm else 0     # BN's γ and β
        return n
