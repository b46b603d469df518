"""Spectral normalisation (Miyato et al. 2018) of a layer's weights, for the DCGAN's D
(chapter 21.6; the appendix's lever board tries it with the hinge loss of losses.py).

A layer computes with W̄ = W / σ(W), σ the largest singular value of W seen as a
matrix M (out × in: a Conv2d's (F, C·k·k), a Linear's Wᵀ), so that no layer can
stretch any input by more than a factor 1 and D stays Lipschitz-bounded. σ comes
from power iteration with vectors u, v that persist from step to step (one step
of iteration per forward pass in training, in the order of PyTorch's spectral_norm):

    u ← M v / ‖M v‖,   v ← Mᵀu / ‖Mᵀu‖,   σ = uᵀ M v

u and v are not trained; they are the layer's buffers (saved with the weights,
as BatchNorm's running statistics). In evaluation the stored u, v give σ.

Backward, with u and v constants of the step (as Miyato et al. and PyTorch), Ḡ =
dL/dW̄ from the wrapped layer's own backward, and dσ/dW = u vᵀ:

    dL/dW = (Ḡ − ⟨Ḡ, W̄⟩ u vᵀ) / σ,   ⟨Ḡ, W̄⟩ = Σ_ij Ḡ_ij W̄_ij

(the bias is not normalised: dL/db is the layer's own).
"""

import numpy as np

from .conv import Conv2d
from .layers import Layer, Linear

POWER_ITERATIONS_AT_START = 15   # as PyTorch: σ is close from the first step on
EPS = 1e-12                      # as PyTorch's normalize: u, v never divided by 0


def _unit(a, out):
    np.divide(a, max(float(np.linalg.norm(a)), EPS), out=out)
    return out


class SpectralNorm(Layer):
    """``layer`` (a Conv2d or a Linear) computing with its weights divided by their
    spectral norm. Its trained W and b are this wrapper's (params); the layer
    itself holds W̄ = W/σ and dL/dW̄ in arrays of its own."""

    params = ("W", "b")
    buffers = ("u", "v")

    def __init__(self, layer, rng):
        super().__init__()
        if not isinstance(layer, (Conv2d, Linear)):
            raise TypeError(f"SpectralNorm wraps a Conv2d or a Linear layer, got {type(layer).__name__}")
        self.layer = layer
        self.W, self.b = layer.W, layer.b
        self.dW, self.db = np.zeros_like(self.W), np.zeros_like(self.b)
        layer.W, layer.dW = np.empty_like(self.W), np.zeros_like(self.W)   # W̄ and dL/dW̄
        out, n_in = self._matrix(self.W).shape
        dt = self.W.dtype
        self.u = _unit(rng.standard_normal(out), np.empty(out, dt))
        self.v = _unit(rng.standard_normal(n_in), np.empty(n_in, dt))
        for _ in range(POWER_ITERATIONS_AT_START):
            self._power_step()

    def _matrix(self, a):
        """A weight-shaped array as the (out, in) matrix M: a view."""
        return a.T if isinstance(self.layer, Linear) else a.reshape(a.shape[0], -1)

    def _power_step(self):
        M = self._matrix(self.W)
        _unit(M @ self.v, self.u)
        _unit(M.T @ self.u, self.v)

    def forward(self, x, train=True):
        if train:
            self._power_step()
        M = self._matrix(self.W)
        self.sigma = float(self.u @ (M @ self.v))
        np.divide(self.W, self.W.dtype.type(self.sigma), out=self.layer.W)   # W̄ = W / σ
        self.layer.b, self.layer.db = self.b, self.db   # the bias as it is (views of the net's vectors)
        return self.layer.forward(x, train=train)

    def backward(self, grad, param_grads=True, input_grad=True):
        dx = self.layer.backward(grad, param_grads=param_grads, input_grad=input_grad)
        if param_grads:   # dL/dW = (Ḡ − ⟨Ḡ, W̄⟩ u vᵀ) / σ
            g_bar = self._matrix(self.layer.dW)
            overlap = float(np.vdot(g_bar, self._matrix(self.layer.W)))
            dW = self._matrix(self.dW)
            np.subtract(g_bar, overlap * np.outer(self.u, self.v), out=dW)
            dW /= self.W.dtype.type(self.sigma)
        return dx
