"""An exponential moving average (EMA) of G's weights (chapter 21.5).

Yazıcı et al. (2019) found that the running average of the generator's
weights over the last few thousand steps makes better samples than the
weights of the last step, which still jump around as D and G chase each other.
Training is unchanged — D plays against the G being trained — and the average
is only what we sample from:

    θ̄ ← β_t · θ̄ + (1 − β_t) · θ,   β_t = min(β, (1 + t) / (10 + t))

after every G update t = 1, 2, … The ramp (1 + t) / (10 + t), as in
TensorFlow's ExponentialMovingAverage, keeps the first epochs' average from
being dominated by the random initial weights: with β = 0.999 alone, the
starting point would still weigh 39 % after the first epoch of 937 steps.
BatchNorm's running statistics (DCGAN) are averaged the same way.
"""

import numpy as np


class WeightAverage:
    """``net``: a network built like the trained one, holding the average."""

    def __init__(self, net, trained, decay):
        if not 0 < decay < 1:
            raise ValueError(f"the average's decay must be between 0 and 1, got {decay}")
        self.net, self.decay, self.updates = net, float(decay), 0
        self.reset(trained)

    def reset(self, trained):
        """Start the average at the trained network's weights."""
        self.net.flat_params[...] = trained.flat_params
        self.net.flat_buffers[...] = trained.flat_buffers
        self.updates = 0

    def rate(self):
        """β_t of the next update."""
        return min(self.decay, (1 + self.updates + 1) / (10 + self.updates + 1))

    def update(self, trained):
        """θ̄ ← β_t θ̄ + (1 − β_t) θ, i.e. θ̄ += (1 − β_t)(θ − θ̄), in place."""
        step = 1 - self.rate()
        for mine, theirs in ((self.net.flat_params, trained.flat_params),
                             (self.net.flat_buffers, trained.flat_buffers)):
            if mine.size:
                difference = np.subtract(theirs, mine, out=self._scratch(theirs))
                difference *= step
                mine += difference
        self.updates += 1

    def _scratch(self, like):
        scratch = getattr(self, "_buffer", None)
        if scratch is None or scratch.size < like.size:
            scratch = self._buffer = np.empty(max(like.size, self.net.flat_params.size), like.dtype)
        return scratch[:like.size]
