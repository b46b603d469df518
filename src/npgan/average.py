"""An exponential moving average (EMA) of G's weights (chapter 21.4).

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
        net.flat_params[...] = trained.flat_params   # the average starts at the trained weights
        net.flat_buffers[...] = trained.flat_buffers
        # θ − θ̄ of the larger of the two vectors, without a fresh array every step
        self._difference = np.empty(max(net.flat_params.size, net.flat_buffers.size), net.dtype)

    def rate(self):
        """β_t of the next update, t = updates + 1."""
        t = self.updates + 1
        return min(self.decay, (1 + t) / (10 + t))

    def update(self, trained):
        """θ̄ ← β_t θ̄ + (1 − β_t) θ, i.e. θ̄ += (1 − β_t)(θ − θ̄), in place."""
        step = 1 - self.rate()
        for mine, theirs in ((self.net.flat_params, trained.flat_params),
                             (self.net.flat_buffers, trained.flat_buffers)):
            difference = np.subtract(theirs, mine, out=self._difference[:mine.size])
            difference *= step
            mine += difference
        self.updates += 1
