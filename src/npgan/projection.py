"""The projection discriminator's last layer (Miyato & Koyama 2018), for the
CGAN's D (chapter 21.3, eq-cgan-projection; measured in the appendix 实验记录).

A CGAN D that reads the label only at its input, beside the 784 pixels,
has it as one of 794 numbers mixed together by the last layer. A
projection D also lets the label pick part of the last layer itself: each
class c owns a vector v_c, and with h the features reaching the last layer,

    logit = h · w + b + h · v_y          (w + v_y: one weight vector per class)

so "is this a real 3?" is asked with the 3's own weights. With Y the (N, k)
one-hot labels, V the (k, F) class vectors and g = dL/dlogit:

    dL/dw = hᵀ g,   dL/db = Σ g,   dL/dV = Yᵀ (g ⊙ h),   dL/dh = g (w + Y V)ᵀ

V starts at 0, so before training this D is exactly the CGAN's, and the
random numbers drawn for the other weights are the same as without it.
"""

import numpy as np

from .layers import Layer


class ProjectionLogit(Layer):
    """(N, F) features → (N, 1) logits; ``onehot`` (N, k) must be set (by the
    model, before each forward) to the labels of the N rows. Starts as the
    given Linear(F → 1), whose w and b it takes, with V = 0."""

    params = ("W", "b", "V")

    def __init__(self, linear, n_classes):
        super().__init__()
        n_in, n_out = linear.W.shape
        if n_out != 1:
            raise ValueError(f"ProjectionLogit extends a Linear with one output (a logit), got {n_out}")
        self.W, self.b = linear.W.copy(), linear.b.copy()
        self.V = np.zeros((n_classes, n_in), dtype=linear.W.dtype)
        self.dW, self.db, self.dV = np.zeros_like(self.W), np.zeros_like(self.b), np.zeros_like(self.V)
        self.onehot = None

    def forward(self, x, train=True):
        if self.onehot is None or self.onehot.shape != (x.shape[0], self.V.shape[0]):
            raise ValueError(f"ProjectionLogit: set onehot to ({x.shape[0]}, {self.V.shape[0]}) "
                             f"labels before the forward pass, got "
                             f"{None if self.onehot is None else self.onehot.shape}")
        self.x = x
        self.class_w = self._buffer("class_w", x.shape, x.dtype)        # rows v_y
        np.matmul(self.onehot, self.V, out=self.class_w)
        y = self._buffer("y", (x.shape[0], 1), x.dtype)
        np.matmul(x, self.W, out=y)
        y[:, 0] += np.einsum("nf,nf->n", x, self.class_w)
        y += self.b
        return y

    def backward(self, grad, param_grads=True, input_grad=True):
        if param_grads:
            np.matmul(self.x.T, grad, out=self.dW)
            self.db[...] = grad.sum()
            np.matmul(self.onehot.T, grad * self.x, out=self.dV)
        if not input_grad:
            return None
        dx = self._buffer("dx", self.x.shape, grad.dtype)
        np.add(self.class_w, self.W[:, 0], out=dx)       # w + v_y per row
        dx *= grad
        return dx
