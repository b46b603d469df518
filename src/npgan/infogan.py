"""InfoGAN (chapter 21.7): a GAN whose generator gets extra codes c, and whose
discriminator carries a second head Q that must read c back from G(z, c).

    G: [z (62), c1 one-hot (10), c2, c3] → 256 → 512 → 784   (tanh)
    D: 784 → 512 → 256 → [ real/fake logit | Q: c1's 10 logits | Q: means of c2, c3 ]

c1 ~ Cat(10) and c2, c3 ~ U(−1, 1) are drawn from their priors for every fake,
and no label of the data is ever used (unless n_labels > 0: the semi-supervised
InfoGAN of semisup.py, whose Q also reads c1 off a few labelled images). Q is one more linear map on D's last
hidden layer (or, with q_hidden, a hidden layer of its own and then that map:
qhead.py), so D and Q are ONE network (``self.D``) whose output has
1 + n_cat + n_cont columns.

The mutual-information term (eq-infogan-li in 21.7) is the variational lower bound

    L_I(G, Q) = E_{c ~ p(c), x ~ G(z, c)} [log Q(c | x)] + H(c)  ≤  I(c; G(z, c)).

H(c) is a constant, so maximising L_I means minimising −E log Q(c | x), which
for our Q is a sum of two familiar losses (eq-infogan-q):
    categorical c1:  cross-entropy of softmax(Q's 10 logits) against c1;
    continuous c2, c3: Gaussian negative log-likelihood with unit variance,
                       ½ Σ_j (c_j − μ_j)² (+ a constant).
Both D (with Q) and G minimise their GAN loss plus λ_cat·CE + λ_con·NLL
(eq-infogan-d, eq-infogan-g).
"""

import numpy as np

from . import models
from .batchnorm import set_batch_groups
from .dcgan import build_discriminator, build_generator
from .evaluator_training import random_shifts
from .gan import GAN, IMAGE_SIZE
from .infogan_config import InfoGANConfig
from .layers import Sequential, mlp
from .losses import (batch_cluster_entropy, bce_with_logits, gaussian_nll, softmax,
                     softmax_cross_entropy)
from .qhead import QHead


class InfoGAN(GAN):
    """Generator G(z, c) and discriminator D with its Q head, trained without labels
    (or, with n_labels > 0, with that many: semisup.py)."""

    name = "infogan"

    @staticmethod
    def accepts(config):
        return config.n_classes == 0

    def __init__(self, config=None, seed=0):
        self.config = config = config or InfoGANConfig()
        if config.n_classes:
            raise ValueError("InfoGAN learns without labels: n_classes must be 0")
        super().__init__(config, seed)
        self.info_log = []   # per step: (CE of c1, NLL of the continuous codes), of the G step
        self.labelled = None     # n_labels > 0: the semisup.LabelledSet, from use_labels
        head = self.D.layers[-1]   # Q's own weights (views into D's), for lr_q
        self.q_weights = [getattr(head, name) for name in head.own] if isinstance(head, QHead) \
            else [head.W[:, 1:], head.b[1:]]
        self.label_log = []      # n_labels > 0, per step: c1's CE on the step's labelled rows

    def use_labels(self, images, labels, seed=0):
        """n_labels > 0: choose the labelled images Q's c1 head learns from (semisup.py):
        n_labels of the training ``images`` with their ``labels``, drawn by ``seed`` from
        train[:50000], the same number of each label. Call it before training; returns
        their positions in ``images``."""
        from .semisup import labelled_set

        if not self.config.n_labels:
            raise ValueError("this InfoGAN learns without labels (n_labels=0): it uses none")
        self.labelled = labelled_set(images, labels, self.config.n_labels, seed,
                                     self.config.n_cat, self.dtype)
        return self.labelled.index

    def build_networks(self):
        """G takes [z, c1 one-hot, continuous codes]; D ends in 1 + n_cat + n_cont
        outputs: the real/fake logit, then Q's. arch="conv" uses DCGAN's networks
        (dcgan.py) with these input and output sizes, as Chen et al. did on MNIST."""
        c = self.config
        n_out = 1 + c.n_cat + c.n_cont
        if c.arch == "conv":
            G = build_generator(c, self.rng, self.dtype, n_in=self.input_size)
            D = build_discriminator(c, self.rng, self.dtype, n_out=n_out)
        elif c.arch == "mlp":
            G = mlp((self.input_size, *c.g_hidden, IMAGE_SIZE), c.activation, "tanh",
                    self.rng, self.dtype, c.leaky_slope)
            D = mlp((IMAGE_SIZE, *c.d_hidden, n_out), c.activation, None,
                    self.rng, self.dtype, c.leaky_slope, dropout=c.d_dropout)
        else:
            raise ValueError(f"arch must be 'mlp' or 'conv', got {c.arch!r}")
        if c.q_hidden:   # D's last Linear becomes the two heads of qhead.py
            last = D.layers[-1]
            head = QHead(last.W.shape[0], c.q_hidden, n_out - 1, self.rng,
                         c.leaky_slope, self.dtype, batch_norm=c.q_batch_norm)
            D = Sequential(D.layers[:-1] + [head])
        return G, D

    @property
    def input_size(self):
        """Length of G's input vector [z, c1 one-hot, continuous codes]."""
        c = self.config
        return c.latent_dim + c.n_cat + c.n_cont

    @property
    def code_slices(self):
        """Where z, c1 and the continuous codes sit in G's input."""
        L, K = self.config.latent_dim, self.config.n_cat
        return slice(0, L), slice(L, L + K), slice(L + K, self.input_size)

    # ---------------------------------------------------------------- inputs

    def sample_noise(self, n, rng=None, out=None):
        """G's whole input drawn from the priors: z ~ N(0, I) (or U(−1, 1) by
        config.noise), c1 uniform over n_cat values (one-hot), c2, c3 ~ U(−1, 1).
        Always in this order from ``rng``, so that with one seed every part is
        the same whatever codes a caller overrides afterwards."""
        rng = rng or self.rng
        if out is None:
            out = np.empty((n, self.input_size), dtype=self.dtype)
        z_part, cat_part, cont_part = self.code_slices
        out[:, z_part] = GAN.sample_noise(self, n, rng)
        if self.config.z_std != 1:
            out[:, z_part] *= self.config.z_std
        c1 = rng.integers(0, self.config.n_cat, size=n) if self.config.n_cat else None
        cont = rng.uniform(-1, 1, size=(n, self.config.n_cont))
        out[:, cat_part] = 0
        if c1 is not None:
            out[np.arange(n), cat_part.start + c1] = 1
        out[:, cont_part] = cont
        return out

    def inputs(self, z, c1, cont):
        """G's input from z (N, latent_dim), c1 (N,) ints and cont (N, n_cont)."""
        z = np.asarray(z, dtype=self.dtype)
        n = len(z)
        c1, cont = np.broadcast_to(c1, (n,)), np.broadcast_to(cont, (n, self.config.n_cont))
        if self.config.n_cat and not np.all((0 <= c1) & (c1 < self.config.n_cat)):
            raise ValueError(f"c1 must be in 0…{self.config.n_cat - 1}, got {c1.min()}…{c1.max()}")
        out = np.zeros((n, self.input_size), dtype=self.dtype)
        z_part, cat_part, cont_part = self.code_slices
        out[:, z_part] = z
        out[np.arange(n), cat_part.start + c1] = 1
        out[:, cont_part] = cont
        return out

    @property
    def code_names(self):
        """The codes' names as the chapter writes them: c1 (categorical), c2, c3, …"""
        first = 2 if self.config.n_cat else 1
        return (("c1",) if self.config.n_cat else ()) + tuple(
            f"c{first + j}" for j in range(self.config.n_cont))

    def set_codes(self, g_in, codes):
        """Overwrite the codes named in ``codes`` ({"c1": 3, "c2": 0.5}) in every
        row of G's input ``g_in`` (in place); the rest of each row is left as drawn."""
        _, cat_part, cont_part = self.code_slices
        for name, value in codes.items():
            if name not in self.code_names:
                raise ValueError(f"unknown code {name!r}: this model has {', '.join(self.code_names)}")
            if name == "c1" and self.config.n_cat:
                if not np.isfinite(float(value)) or float(value) != int(value) or \
                        not 0 <= int(value) < self.config.n_cat:   # int(inf) is an OverflowError
                    raise ValueError(f"c1 must be a whole number 0–{self.config.n_cat - 1}, got {value}")
                g_in[:, cat_part] = 0
                g_in[:, cat_part.start + int(value)] = 1
            else:
                if not np.isfinite(float(value)):
                    raise ValueError(f"{name} must be a finite number, got {value}")
                j = self.code_names.index(name) - (1 if self.config.n_cat else 0)
                g_in[:, cont_part.start + j] = float(value)
        return g_in

    def code_grid(self, rng, n_per_row=10):
        """The snapshot grid's inputs: row r has c1 = r, columns differ in z,
        the continuous codes are 0."""
        n_rows = self.config.n_cat or 1
        z = GAN.sample_noise(self, n_rows * n_per_row, rng) * self.dtype.type(self.config.z_std)
        return self.inputs(z, np.repeat(np.arange(n_rows), n_per_row), 0.0)

    def generate(self, g_in, labels=None):
        """Images G(z, c) in [−1, 1], (N, 784), from G's whole input (see ``inputs``)."""
        if labels is not None:
            raise ValueError("InfoGAN takes no labels: its codes are part of G's input "
                             "(see InfoGAN.inputs)")
        g_in = np.asarray(g_in, dtype=self.dtype)
        if g_in.ndim != 2 or g_in.shape[1] != self.input_size:
            raise ValueError(f"G's input must have shape (N, {self.input_size}), got {g_in.shape}")
        return self.sampler(g_in)

    def read_codes(self, x):
        """What Q reads from images x (N, 784): (c1 probabilities (N, n_cat),
        means of the continuous codes (N, n_cont))."""
        out = self.D(np.asarray(x, dtype=self.dtype))
        K = self.config.n_cat
        return softmax(out[:, 1:1 + K]), out[:, 1 + K:]

    # ---------------------------------------------------------------- training

    def _info_loss(self, q_out, c1, cont, grad_out):
        """−E log Q(c | x) as the two losses of eq-infogan-q, weighted by λ; writes
        their gradient w.r.t. Q's columns of D's output into ``grad_out``.
        Returns (weighted total, CE, NLL)."""
        c, K = self.config, self.config.n_cat
        ce = nll = 0.0
        if K:
            ce, g = softmax_cross_entropy(q_out[:, 1:1 + K], c1)
            np.multiply(g, c.lambda_cat, out=grad_out[:, 1:1 + K])
        if c.n_cont:
            nll, g = gaussian_nll(q_out[:, 1 + K:], cont)
            np.multiply(g, c.lambda_con, out=grad_out[:, 1 + K:])
        return c.lambda_cat * ce + c.lambda_con * nll, ce, nll

    def train_step(self, x_real, labels=None):
        """One mini-batch: first D with Q, then G (eq-infogan-d, eq-infogan-g).

        x_real: (B, 784) in [−1, 1]. Returns (D loss, G loss, mean D(x), mean D(G(z, c)))
        where each loss includes its λ-weighted information term. With n_labels, D's pass
        also reads B of the labelled images, and D's loss includes their c1 term (semisup.py).
        """
        if labels is not None:
            raise ValueError("InfoGAN learns without labels: call train_step(x_real) alone "
                             "(a semi-supervised one takes its labelled images from use_labels)")
        B, c, width = x_real.shape[0], self.config, 1 + self.config.n_cat + self.config.n_cont
        _, cat_part, cont_part = self.code_slices
        g_in = self.sample_noise(B, out=self._buffer("g_in", (B, self.input_size), self.dtype))
        c1 = g_in[:, cat_part].argmax(axis=1)
        cont = g_in[:, cont_part]
        n_lab = B if c.n_labels else 0   # semisup.py: B labelled rows after the real and fake ones
        d_in = self._buffer("d_in", (2 * B + n_lab, IMAGE_SIZE), self.dtype)
        d_in[:B] = x_real
        d_in[B:2 * B] = self.G.forward(g_in)
        if n_lab:
            if self.labelled is None:
                raise ValueError(f"this InfoGAN learns c1 from {c.n_labels} labelled images: call "
                                 "model.use_labels(images, labels, seed) before training")
            pick = self.rng.integers(0, len(self.labelled.labels), size=B)
            if c.label_shift:   # a few images seen thousands of times: let Q see them moved
                d_in[2 * B:] = random_shifts(self.labelled.images[pick], c.label_shift, self.rng,
                                             background=-1.0)
            else:
                np.take(self.labelled.images, pick, axis=0, out=d_in[2 * B:])

        # --- D and Q: the GAN loss on real and fake rows (eq-dloss), plus λ·(−log Q(c|x))
        # on the fake rows, whose codes we know; real rows give Q no gradient.
        targets = self._buffer("d_targets", (2 * B, 1), self.dtype)
        targets[:B] = c.real_label
        targets[B:] = 0
        set_batch_groups(self.D, B)   # arch="conv": real and fake halves apart, as DCGAN.train_step
        if c.q_batch_norm:            # and so in Q's own hidden layer
            set_batch_groups(self.D.layers[-1], B)
        out = self.D.forward(d_in)
        loss_gan, grad_logit, prob = bce_with_logits(out[:2 * B, :1], targets)
        grad = self._buffer("d_grad", (2 * B + n_lab, width), self.dtype)
        grad[:] = 0
        grad[:2 * B, :1] = grad_logit
        info, _, _ = self._info_loss(out[B:2 * B], c1, cont, grad[B:2 * B])
        if n_lab:                      # Q's c1 on the labelled rows, against their labels (eq-infogan-label)
            ce_label, g = softmax_cross_entropy(out[2 * B:, 1:1 + c.n_cat], self.labelled.labels[pick])
            np.multiply(g, c.lambda_label, out=grad[2 * B:, 1:1 + c.n_cat])
            info += c.lambda_label * ce_label
            self.label_log.append(ce_label)
        if c.lambda_ent and c.n_cat:   # Q's c1 on the real rows, without their labels
            ent, g = batch_cluster_entropy(out[:B, 1:1 + c.n_cat])
            np.multiply(g, c.lambda_ent, out=grad[:B, 1:1 + c.n_cat])
            info += c.lambda_ent * ent
        loss_d = loss_gan + info
        d_real, d_fake = float(prob[:B].mean()), float(prob[B:].mean())
        self.D.backward(grad, input_grad=False)
        self._step_d()

        # --- G: the non-saturating loss (eq-gloss) plus the same information term,
        # through the updated D and Q, whose weights this pass leaves alone.
        ones = self._buffer("g_targets", (B, 1), self.dtype)
        ones[:] = 1
        out = self.D.forward(d_in[B:2 * B])
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

    def _step_d(self):
        """D's optimizer step; with lr_q, Q's own weights then move lr_q / lr_d times as
        far: Adam's and SGD's steps are proportional to the rate, so this is the step
        an optimizer of Q's weights alone at lr_q would take (its moments are per weight)."""
        if not self.config.lr_q:
            self.opt_d.step()
            return
        before = [w.copy() for w in self.q_weights]
        self.opt_d.step()
        ratio = self.dtype.type(self.config.lr_q / self.config.lr_d - 1)
        for w, old in zip(self.q_weights, before):
            w += (w - old) * ratio


models.register("infogan", InfoGANConfig, InfoGAN, InfoGANConfig, book_epochs=20)
