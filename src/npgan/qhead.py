"""InfoGAN's two heads when Q has a hidden layer of its own (chapter 21.3).

Chen et al. 2016 give Q, on MNIST, one more hidden layer on top of the body it
shares with D (FC 128, then the codes). With ``q_hidden`` set, D's last layer
is this one, which computes both heads from D's last hidden layer h:

    out = [ h W_d + b_d  |  a W_q + b_q ],   a = LeakyReLU(u),  u = h W_h + b_h

column 0 is D's real/fake logit, the others are Q's outputs (c1's logits, then
the continuous codes' means), exactly as when Q is a single linear map, so the
losses of infogan.py read it unchanged. With ``batch_norm`` (the paper's FC 128,
BN, LeakyReLU), u is batch-normalised before the LeakyReLU: a = LeakyReLU(BN(u)),
BN as batchnorm.py has it (its groups: infogan.py normalises the real, fake and
labelled rows apart, as the DCGAN's D does); without it, as in the book's D, none.

Backward, with g = dL/d(out) split into g_d (column 0) and g_q (the rest):
    dL/dW_d = hᵀ g_d            dL/db_d = Σ_rows g_d
    dL/dW_q = aᵀ g_q            dL/db_q = Σ_rows g_q
    dL/du   = (g_q W_qᵀ) ⊙ LeakyReLU'(u)       (with BN: LeakyReLU'(BN(u)), then BN's backward)
    dL/dW_h = hᵀ dL/du          dL/db_h = Σ_rows dL/du
    dL/dh   = g_d W_dᵀ + dL/du W_hᵀ      (both heads send gradient into the body)
"""

import numpy as np

from .batchnorm import BatchNorm
from .layers import Layer


def _bn_array(name):
    """A QHead attribute that is its BatchNorm's array ``name`` (so that Sequential's
    flat vectors, which set the layer's attributes, hold BN's γ, β and statistics)."""
    return property(lambda head: getattr(head.bn, name),
                    lambda head, value: setattr(head.bn, name, value))


class QHead(Layer):
    """D's logit and Q's outputs from h (B, n_in); Q through a hidden layer of n_hidden."""

    params = ("W_d", "b_d", "W_h", "b_h", "W_q", "b_q")
    own = ("W_h", "b_h", "W_q", "b_q")      # Q's own parameters (not the logit's): InfoGAN's lr_q
    gamma_h, beta_h, dgamma_h, dbeta_h = map(_bn_array, ("gamma", "beta", "dgamma", "dbeta"))
    running_mean_h, running_var_h = map(_bn_array, ("running_mean", "running_var"))

    def __init__(self, n_in, n_hidden, n_codes, rng, slope=0.2, dtype=np.float32, batch_norm=False):
        super().__init__()
        self.bn = BatchNorm(n_hidden, dtype=dtype) if batch_norm else None
        self.layers = [self.bn] if batch_norm else []   # for batchnorm.set_batch_groups
        if batch_norm:
            self.params = QHead.params + ("gamma_h", "beta_h")
            self.own = QHead.own + ("gamma_h", "beta_h")
            self.buffers = ("running_mean_h", "running_var_h")
        if n_hidden < 1 or n_codes < 1:
            raise ValueError(f"QHead needs n_hidden ≥ 1 and n_codes ≥ 1, got {n_hidden} and {n_codes}")
        self.slope = slope

        def normal(shape, std):
            return (rng.standard_normal(shape) * std).astype(dtype)

        # the inits of layers.Linear: Xavier before a logit or a mean, He before LeakyReLU
        self.W_d = normal((n_in, 1), np.sqrt(2.0 / (n_in + 1)))
        self.W_h = normal((n_in, n_hidden), np.sqrt(2 / (1 + slope**2)) / np.sqrt(n_in))
        self.W_q = normal((n_hidden, n_codes), np.sqrt(2.0 / (n_hidden + n_codes)))
        self.b_d = np.zeros(1, dtype)
        self.b_h = np.zeros(n_hidden, dtype)
        self.b_q = np.zeros(n_codes, dtype)
        for name in self.params:
            setattr(self, "d" + name, np.zeros_like(getattr(self, name)))

    def forward(self, h, train=True):
        B, dtype = h.shape[0], self.W_d.dtype
        self.h = h
        out = self._buffer("out", (B, 1 + self.W_q.shape[1]), dtype)
        np.matmul(h, self.W_d, out=out[:, :1])
        out[:, :1] += self.b_d
        u = self._buffer("u", (B, self.W_h.shape[1]), dtype)
        np.matmul(h, self.W_h, out=u)
        u += self.b_h
        if self.bn is not None:
            u = self.bn.forward(u, train=train)
        self.positive = np.greater(u, 0, out=self._buffer("positive", u.shape, bool))
        self.a = np.maximum(u, u * dtype.type(self.slope), out=self._buffer("a", u.shape, dtype))
        np.matmul(self.a, self.W_q, out=out[:, 1:])
        out[:, 1:] += self.b_q
        return out

    def backward(self, grad, param_grads=True, input_grad=True):
        g_d, g_q = grad[:, :1], grad[:, 1:]
        du = self._buffer("du", self.a.shape, self.a.dtype)
        np.matmul(g_q, self.W_q.T, out=du)
        du *= np.where(self.positive, 1, self.slope).astype(du.dtype)
        if self.bn is not None:
            du = self.bn.backward(du, param_grads=param_grads)
        if param_grads:
            np.matmul(self.h.T, g_d, out=self.dW_d)
            np.sum(g_d, axis=0, out=self.db_d)
            np.matmul(self.a.T, g_q, out=self.dW_q)
            np.sum(g_q, axis=0, out=self.db_q)
            np.matmul(self.h.T, du, out=self.dW_h)
            np.sum(du, axis=0, out=self.db_h)
        if not input_grad:
            return None
        dh = self._buffer("dh", self.h.shape, self.h.dtype)
        np.matmul(g_d, self.W_d.T, out=dh)
        dh += du @ self.W_h.T
        return dh
