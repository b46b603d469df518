"""Optimizers that update a network's flat parameter vector in place.

A network built by ``layers.Sequential`` keeps all its parameters in one
vector θ and all gradients in one vector g, so each update below is a few
whole-vector NumPy operations, with no Python loop over layers.
"""

import math
import numbers

import numpy as np


def _check(who, params, grads, lr, **fractions):
    """ValueError naming the argument of optimizer ``who`` that is wrong, at once
    rather than at the first step (or never: a negative lr climbs the loss)."""
    if not (isinstance(params, np.ndarray) and isinstance(grads, np.ndarray)) or \
            params.shape != grads.shape:
        raise ValueError(f"{who}: params and grads must be arrays of one shape, got "
                         f"{np.shape(params)} and {np.shape(grads)}")
    for name, value, high in (("lr", lr, math.inf), *((n, v, 1) for n, v in fractions.items())):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
                not (0 <= value < high and math.isfinite(value)):
            where = "≥ 0" if high == math.inf else "in [0, 1)"
            raise ValueError(f"{who}: {name} must be a finite number {where}, got {value!r}")


class SGD:
    """Stochastic gradient descent with momentum:
        v ← μ v + g,   θ ← θ - η v        (μ = 0: plain SGD, θ ← θ - η g)
    """

    def __init__(self, params, grads, lr=0.01, momentum=0.0):
        _check("SGD", params, grads, lr, momentum=momentum)
        self.params, self.grads = params, grads
        self.lr, self.momentum = lr, momentum
        self.velocity = np.zeros_like(params)
        self.scratch = np.empty_like(params)

    def step(self):
        if self.momentum:
            self.velocity *= self.momentum
            self.velocity += self.grads
            np.multiply(self.velocity, self.lr, out=self.scratch)
        else:
            np.multiply(self.grads, self.lr, out=self.scratch)
        self.params -= self.scratch

    def state(self):
        return {"velocity": self.velocity}


class Adam:
    """Adam (Kingma & Ba 2015, Algorithm 1):

        m ← β1 m + (1 - β1) g
        v ← β2 v + (1 - β2) g²
        θ ← θ - η · m̂ / (sqrt(v̂) + ε),  m̂ = m / (1 - β1^t),  v̂ = v / (1 - β2^t).

    For speed the vectors kept are M = m / (1-β1) and V = v / (1-β2), so that
    M ← β1 M + g and V ← β2 V + g² need no extra scaling; every constant
    factor then folds into two scalars (see ``step``). The update is the same.
    """

    def __init__(self, params, grads, lr=2e-4, beta1=0.5, beta2=0.999, eps=1e-8):
        _check("Adam", params, grads, lr, beta1=beta1, beta2=beta2)
        if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not 0 < eps < math.inf:
            raise ValueError(f"Adam: eps must be a finite number > 0, got {eps!r}")
        self.params, self.grads = params, grads
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.M = np.zeros_like(params)
        self.V = np.zeros_like(params)
        self.t = 0
        self.scratch = np.empty_like(params)

    def step(self):
        """Ten whole-vector passes, no allocation. (Splitting the vector over
        two threads or into cache-sized chunks measured no faster here.)"""
        self.t += 1
        b1, b2, g, s = self.beta1, self.beta2, self.grads, self.scratch
        self.M *= b1
        self.M += g                      # M = m / (1-β1)
        np.multiply(g, g, out=s)
        self.V *= b2
        self.V += s                      # V = v / (1-β2)
        if self.lr == 0:                 # the moments move, the weights do not
            return
        # m̂ = M (1-β1)/(1-β1^t) and sqrt(v̂) = sqrt(V (1-β2)/(1-β2^t)), so
        # θ ← θ - η m̂/(sqrt(v̂) + ε) = θ - M / (sqrt(V·c) + ε·k) with
        k = (1 - b1**self.t) / (self.lr * (1 - b1))
        c = k * k * (1 - b2) / (1 - b2**self.t)
        np.multiply(self.V, c, out=s)
        np.sqrt(s, out=s)
        s += self.eps * k
        np.divide(self.M, s, out=s)
        self.params -= s

    @property
    def m(self):
        return self.M * (1 - self.beta1)

    @property
    def v(self):
        return self.V * (1 - self.beta2)

    def state(self):
        return {"M": self.M, "V": self.V, "t": np.array(self.t)}


def make_optimizer(name, params, grads, lr, beta1=0.5, beta2=0.999, momentum=0.0):
    if name == "adam":
        return Adam(params, grads, lr=lr, beta1=beta1, beta2=beta2)
    if name == "sgd":
        return SGD(params, grads, lr=lr, momentum=momentum)
    raise ValueError(f"unknown optimizer {name!r}: use 'adam' or 'sgd'")
