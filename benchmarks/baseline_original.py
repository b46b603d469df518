"""The baseline: a GAN written the way a course would first write it.

This is the benchmark's reference point "before optimisation": plain float64
NumPy, one small class per layer, a fresh array for every result (no work
buffers, nothing updated in place), plain SGD, ReLU hidden layers, and a
sigmoid output whose binary cross-entropy is computed from the probabilities.

Same networks and same step as npgan:

    D: 784 → 512 → 256 → 1 (ReLU, ReLU, sigmoid)
    G: 100 → 256 → 512 → 784 (ReLU, ReLU, tanh)
    CGAN: the one-hot label (10 numbers) is concatenated to both inputs.

    One step: G makes B fakes; D is updated on [real; fake] with targets
    [1; 0]; then the same fakes go through the UPDATED D with targets 1 and
    only G is updated.

Like chapter-12 style code, every ``backward`` computes all gradients (dW, db
and dL/dx), even the ones nobody uses: dL/dx of the first layers, and D's
weight gradients in the G step. That is 5 matrix products more than npgan's
22 (about 828 instead of 654 MFLOP per GAN step); ``step_flops`` counts them.
"""

import numpy as np


class Linear:
    """y = x W + b; backward: dW = x^T g, db = sum of g's rows, dx = g W^T."""

    def __init__(self, n_in, n_out, rng):
        self.W = rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)  # He init
        self.b = np.zeros(n_out)

    def forward(self, x):
        self.x = x
        return x @ self.W + self.b

    def backward(self, grad):
        self.dW = self.x.T @ grad
        self.db = grad.sum(axis=0)
        return grad @ self.W.T

    def update(self, lr):
        self.W = self.W - lr * self.dW
        self.b = self.b - lr * self.db


class ReLU:
    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, grad):
        return grad * self.mask


class Tanh:
    def forward(self, x):
        self.y = np.tanh(x)
        return self.y

    def backward(self, grad):
        return grad * (1 - self.y ** 2)


class Sigmoid:
    def forward(self, x):
        self.y = 1 / (1 + np.exp(-x))
        return self.y

    def backward(self, grad):
        return grad * self.y * (1 - self.y)


class Network:
    """Layers one after the other."""

    def __init__(self, layers):
        self.layers = layers

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad):
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def update(self, lr):
        for layer in self.layers:
            if isinstance(layer, Linear):
                layer.update(lr)


def bce(p, y, eps=1e-8):
    """Binary cross-entropy of probabilities p against targets y, both (N, 1).
    Returns the mean loss and dloss/dp."""
    n = len(p)
    loss = -np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))
    grad = -(y / (p + eps) - (1 - y) / (1 - p + eps)) / n
    return loss, grad


def one_hot(labels, n_classes):
    out = np.zeros((len(labels), n_classes))
    out[np.arange(len(labels)), labels] = 1
    return out


class BaselineGAN:
    """GAN (n_classes=0) or CGAN (n_classes=10), float64, plain SGD."""

    def __init__(self, n_classes=0, lr=0.01, latent_dim=100, seed=0):
        self.n_classes, self.lr, self.latent_dim = n_classes, lr, latent_dim
        self.rng = np.random.default_rng(seed)
        k, rng = n_classes, self.rng
        self.G = Network([Linear(latent_dim + k, 256, rng), ReLU(),
                          Linear(256, 512, rng), ReLU(),
                          Linear(512, 784, rng), Tanh()])
        self.D = Network([Linear(784 + k, 512, rng), ReLU(),
                          Linear(512, 256, rng), ReLU(),
                          Linear(256, 1, rng), Sigmoid()])

    def train_step(self, x_real, labels=None):
        """x_real: (B, 784) float64 in [-1, 1]; labels: (B,) digits for a CGAN.
        Returns (D loss, G loss, mean D(x), mean D(G(z)))."""
        B, k = len(x_real), self.n_classes
        z = self.rng.standard_normal((B, self.latent_dim))
        if k:
            fake_labels = self.rng.integers(0, k, size=B)
            z = np.hstack([z, one_hot(fake_labels, k)])
            x_real = np.hstack([x_real, one_hot(labels, k)])
        fake = self.G.forward(z)
        if k:
            fake = np.hstack([fake, one_hot(fake_labels, k)])

        # D step: real labelled 1, fake labelled 0
        x = np.vstack([x_real, fake])
        y = np.vstack([np.ones((B, 1)), np.zeros((B, 1))])
        p = self.D.forward(x)
        d_loss, grad = bce(p, y)
        self.D.backward(grad)
        self.D.update(self.lr)

        # G step: the fakes through the updated D, labelled 1; only G changes
        p_fake = self.D.forward(fake)
        g_loss, grad = bce(p_fake, np.ones((B, 1)))
        grad_x = self.D.backward(grad)  # D's own gradients from this pass are not used
        self.G.backward(grad_x[:, :784])
        self.G.update(self.lr)
        return d_loss, g_loss, p[:B].mean(), p[B:].mean()


def step_flops(n_classes=0, batch_size=64, latent_dim=100):
    """Floating-point operations of the matrix products of one baseline step
    (2·m·k·n per product): every backward computes dW and dx of all 3 layers."""
    g = [(latent_dim + n_classes, 256), (256, 512), (512, 784)]
    d = [(784 + n_classes, 512), (512, 256), (256, 1)]
    B = batch_size

    def products(rows, layers, n):  # n products of (rows × n_in)·(n_in × n_out) per layer
        return n * sum(2 * rows * n_in * n_out for n_in, n_out in layers)

    return (products(B, g, 1) + products(2 * B, d, 3)     # G forward; D forward + dW + dx
            + products(B, d, 3) + products(B, g, 2))      # G step: D fwd, dW, dx; G dW, dx
