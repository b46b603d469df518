"""WGAN-GP: a critic instead of a discriminator, and a gradient penalty (chapter 21.5).

The networks are the book's MLPs (gan.py): G 100 → 256 → 512 → 784 with tanh,
the critic D 784 → 512 → 256 → 1 with no sigmoid (its output is a score, not a
probability), no dropout, no batch spread, no normalisation that mixes the rows
of a batch (the penalty is a property of each sample's own gradient).

Critic step (eq-wgan-critic in 21.5), on real images x, fakes x̃ = G(z) and random
interpolates x̂ = ε x + (1 − ε) x̃ with ε ~ U(0, 1) per row:

    L_D = mean D(x̃) − mean D(x) + λ · mean (‖∇_x̂ D(x̂)‖ − 1)²

Its last term is a loss of a gradient, so its parameter gradient is the backward
pass of the backward pass: each layer's ``backward_of_backward`` (layers.py).
After every ``n_critic`` critic steps, one G step: L_G = −mean D(G(z)).
mean D(x) − mean D(x̃), before the penalty, is the critic's estimate of W1
(Kantorovich–Rubinstein duality, eq-wgan-kr): it is what the curves show.
"""

from dataclasses import dataclass

import numpy as np

from . import checks, models
from .gan import GAN, GANConfig, IMAGE_SIZE
from .train import LOSS_BOUND, TrainingDiverged

# The largest W1 between two sets of images in [−1, 1]^784: the diameter √(784 · 2²) = 56.
# A critic whose estimate goes far beyond it has lost its Lipschitz bound.
DIAMETER = 2 * np.sqrt(IMAGE_SIZE)


@dataclass
class WGANConfig(GANConfig):
    """GANConfig with the WGAN-GP paper's settings (Gulrajani et al. 2017, Algorithm 1):
    λ = 10, n_critic = 5, Adam at 1e-4 with β = (0, 0.9); no dropout, no batch spread,
    no average of G's weights. ``real_label`` is not used (there are no labels)."""

    d_dropout: float = 0.0
    lr_d: float = 1e-4
    lr_g: float = 1e-4
    beta1: float = 0.0
    beta2: float = 0.9
    ema_decay: float = 0.0
    d_batch_std: int = 0
    gp_weight: float = 10.0    # λ of the gradient penalty
    n_critic: int = 5          # critic steps per G step

    def validate(self):
        super().validate()
        checks.real_number(self, "gp_weight", 0)
        checks.whole_number(self, "n_critic", 1)
        if self.n_classes:
            raise ValueError("WGANConfig.n_classes must be 0: this WGAN takes no labels")
        if self.d_dropout or self.d_batch_std:
            raise ValueError("WGANConfig: the critic has no dropout and no batch spread (d_dropout "
                             "and d_batch_std must be 0): the penalty is on each image's own gradient, "
                             "and dropout's random masks would change that gradient at every step")
        return self


def gradient_penalty(D, x_hat, weight):
    """λ · mean over rows of (‖∇_x D(x̂)‖ − 1)² (eq-wgan-gp); ADDS its parameter
    gradient to D.flat_grads. Returns (penalty, the gradient norms (B,)).

    v = ∇_x D(x̂) is D's ordinary backward pass from a seed of ones (no parameter
    gradients); with P = λ/B Σ (‖v_i‖ − 1)², dP/dv_i = 2λ/B (‖v_i‖ − 1) v_i / ‖v_i‖,
    which D.backward_of_backward carries to the weights."""
    B = x_hat.shape[0]
    D.forward(x_hat)
    seed = np.ones((B, 1), dtype=x_hat.dtype)
    v = D.backward(seed, param_grads=False)
    norms = np.sqrt(np.einsum("ij,ij->i", v, v))
    gap = norms - 1
    penalty = weight * float(np.mean(gap * gap, dtype=np.float64))
    # a zero gradient has no direction; it is a point of measure zero: give it none
    scale = np.divide(2 * weight / B * gap, norms, out=np.zeros_like(norms), where=norms > 0)
    D.backward_of_backward(v * scale[:, None].astype(v.dtype, copy=False))
    return penalty, norms


def critic_gradients(D, x_real, x_fake, eps, weight):
    """The critic's loss L_D (eq-wgan-critic) and its gradient in D.flat_grads.
    x_real, x_fake: (B, 784); eps: (B, 1), each interpolate's share of x.
    Returns (L_D, mean D(x), mean D(x̃), penalty)."""
    B = x_real.shape[0]
    scores = D.forward(np.concatenate([x_real, x_fake]))
    d_real, d_fake = float(scores[:B].mean(dtype=np.float64)), float(scores[B:].mean(dtype=np.float64))
    seed = np.empty((2 * B, 1), dtype=scores.dtype)
    seed[:B], seed[B:] = -1.0 / B, 1.0 / B           # d/dscores of mean D(x̃) − mean D(x)
    D.backward(seed, input_grad=False)              # writes the parameter gradients
    x_hat = x_fake + eps * (x_real - x_fake)
    penalty, _ = gradient_penalty(D, x_hat, weight)   # adds its own
    return d_fake - d_real + penalty, d_real, d_fake, penalty


class CriticWatch:
    """Stops a WGAN run that has blown up (train.py's rule for the GAN does not
    fit: a critic's scores have no fixed level, so G's loss −mean D(G(z)) may drift
    anywhere). The estimate mean D(x) − mean D(x̃) cannot exceed W1 ≤ DIAMETER
    while the critic is 1-Lipschitz; ten times that, or a critic loss beyond
    ten times LOSS_BOUND, means the penalty no longer holds it."""

    def check(self, iteration, losses):
        d_loss, _, d_real, d_fake = losses
        if abs(d_real - d_fake) > 10 * DIAMETER or abs(d_loss) > 10 * LOSS_BOUND:
            raise TrainingDiverged(
                f"training diverged at iteration {iteration}: the critic's W1 estimate is "
                f"{d_real - d_fake:.4g} and its loss {d_loss:.4g} (two sets of images in [-1, 1] are "
                f"at most {DIAMETER:.0f} apart). Lower the learning rates (lr_d, lr_g) or raise gp_weight.")


class WGAN(GAN):
    """G and a critic D, trained by WGAN-GP. Sampling, snapshots, checkpoints and the
    page exporter are the GAN's (this class changes only the step and D's meaning)."""

    name = "wgan"
    divergence_watch = CriticWatch

    @staticmethod
    def accepts(config):
        return True

    def __init__(self, config=None, seed=0):
        super().__init__(config or WGANConfig(), seed)
        self.critic_steps = 0        # since this object was made: a G step after every n_critic
        self.last_g_loss = None

    def discriminate(self, x, labels=None):
        """The critic's scores D(x), shape (N,): real numbers, higher for images it
        takes as more real; not probabilities (there is no sigmoid)."""
        if np.ndim(x) != 2 or np.shape(x)[1] != IMAGE_SIZE:
            raise ValueError(f"x must be images of shape (N, {IMAGE_SIZE}), got {np.shape(x)}")
        if labels is not None:
            raise ValueError("a WGAN takes no labels")
        return self.D(np.asarray(x, dtype=self.dtype))[:, 0]

    def train_step(self, x_real, labels=None):
        """One critic step on x_real (B, 784) and, after every n_critic of them, one
        G step. Returns (critic loss L_D, G's loss −mean D(G(z)) of its last step,
        mean D(x), mean D(G(z))); mean D(x) − mean D(G(z)) estimates W1."""
        self.check_batch(x_real, labels)
        c, B = self.config, x_real.shape[0]
        z = self._buffer("z", (B, c.latent_dim), self.dtype)
        fake = self.G.forward(self.sample_noise(B, out=z))
        eps = self.rng.random((B, 1), dtype=self.dtype)
        loss_d, d_real, d_fake, _ = critic_gradients(self.D, x_real, fake, eps, c.gp_weight)
        self.opt_d.step()
        self.critic_steps += 1
        if self.critic_steps % c.n_critic == 0:
            self.last_g_loss = self.generator_step(B)
        g_loss = -d_fake if self.last_g_loss is None else self.last_g_loss
        return loss_d, g_loss, d_real, d_fake

    def generator_step(self, B):
        """L_G = −mean D(G(z)) on fresh noise; only G is updated. Returns L_G."""
        z = self._buffer("z", (B, self.config.latent_dim), self.dtype)
        scores = self.D.forward(self.G.forward(self.sample_noise(B, out=z)))
        loss_g = -float(scores.mean(dtype=np.float64))
        seed = np.full((B, 1), -1.0 / B, dtype=self.dtype)
        grad_x = self.D.backward(seed, param_grads=False)   # through D, D's weights untouched
        self.G.backward(grad_x, input_grad=False)
        self.opt_g.step()
        self.after_g_step()
        return loss_g


def w1_estimate(model, real, n=10_000, seed=0, batch_size=2000):
    """The critic's estimate of W1 between ``real`` images (N, 784) in [−1, 1]
    and n samples of G: mean D(x) − mean D(G(z)), z from default_rng(seed)."""
    from .metrics import draw_samples

    fakes = draw_samples(model, n, seed, batch_size=batch_size)
    real_scores = np.concatenate([model.discriminate(real[i:i + batch_size])
                                  for i in range(0, len(real), batch_size)])
    fake_scores = np.concatenate([model.discriminate(fakes[i:i + batch_size])
                                  for i in range(0, n, batch_size)])
    return float(real_scores.mean(dtype=np.float64) - fake_scores.mean(dtype=np.float64))


def book_recipe():
    """The book's WGAN-GP (chapter 21.5): the paper's settings (WGANConfig's defaults) with
    two changes, each measured on the validation images (experiments/wgan_validation.py,
    seed 0, train[:50000]; FD in the CNN evaluator's features, floor 3.05):

    * The paper's settings give G few updates in a CPU budget: one per 5 critic steps,
      each at 1e-4. After 10 epochs (the retired MLP evaluator's FD, floor 1.88): 54.6;
      n_critic 2: 47.6; both rates 2e-4: 47.5. After 30 epochs, both changes together:
      FD 54.8 (18.0× the floor), every digit 7.1–14.3 %, Parzen 142.6, against the
      paper's settings' 137.7 (45.1×), 3.9–22.2 %, 96.5 (experiments/wgan_validation_e30.csv).
      The authors' MNIST script trains 200,000 G iterations (igul222/improved_wgan_training,
      gan_mnist.py); the book's 50 epochs are 23,425, about an eighth of that.
    * An epoch (937 critic steps, 468 G steps) then costs about 1.25 GAN epochs (a critic
      step about one GAN step, benchmarks/wgan_step.py; a G step about half of one), so
      50 epochs take about the GAN's 70 epochs' time.
    """
    return WGANConfig(n_critic=2, lr_d=2e-4, lr_g=2e-4)


models.register("wgan", WGANConfig, WGAN, book_recipe, book_epochs=50)
