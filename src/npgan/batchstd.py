"""Minibatch standard deviation (Karras et al. 2018): one more input for D's
last layer that tells it how varied its batch is (chapter 21.4; measured in the appendix 实验记录).

A G that has collapsed onto a few images makes batches whose rows are nearly
alike. D, which judges every image on its own, cannot see that. This layer
gives it the batch's spread: for each group of g consecutive rows,

    σ_j = sqrt( (1/g) Σ_i (x_ij − μ_j)² + ε )   for every feature j,
    s   = (1/F) Σ_j σ_j,

and appends s as feature F+1 to each row of the group. Backward, with
G = dL/dy and S = Σ_i G_{i,F+1} over the group:

    dL/dx_ij = G_ij + S · (x_ij − μ_j) / (F · g · σ_j)

(μ's own derivative drops out, as Σ_i (x_ij − μ_j) = 0). The groups never mix
real and fake rows when g divides the batch size: the D step stacks B reals
on B fakes.
"""

import numpy as np

from .layers import Layer


class MinibatchStd(Layer):
    """(N, F) → (N, F+1): each row gets its group's mean standard deviation."""

    def __init__(self, group_size, eps=1e-8):
        super().__init__()
        if group_size < 2:
            raise ValueError(f"a group needs at least 2 rows to have a spread, got {group_size}")
        self.group_size, self.eps = group_size, eps

    def forward(self, x, train=True):
        N, F = x.shape
        g = self.group_size
        if N % g:
            raise ValueError(f"MinibatchStd: {N} rows do not split into groups of {g}; "
                             f"use a batch size that {g} divides")
        groups = x.reshape(N // g, g, F)
        self.centred = groups - groups.mean(axis=1, keepdims=True)          # (N/g, g, F)
        self.sigma = np.sqrt((self.centred ** 2).mean(axis=1) + x.dtype.type(self.eps))  # (N/g, F)
        y = self._buffer("y", (N, F + 1), x.dtype)
        y[:, :F] = x
        y[:, F] = np.repeat(self.sigma.mean(axis=1), g)
        return y

    def backward(self, grad, **_):
        N, F1 = grad.shape
        F, g = F1 - 1, self.group_size
        spread = grad[:, F].reshape(N // g, g).sum(axis=1)                # S per group
        dx = self._buffer("dx", (N, F), grad.dtype)
        dx[...] = grad[:, :F]
        dx.reshape(N // g, g, F)[...] += (self.centred * (spread[:, None] / (F * g * self.sigma))[:, None, :])
        return dx
