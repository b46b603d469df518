"""Layers with explicit forward and backward passes (chapter 21.1, "代码实现").

Every layer works on mini-batches of shape (B, features). ``forward`` keeps
what ``backward`` needs; ``backward(grad_out)`` takes dL/d(output) and returns
dL/d(input), and a ``Linear`` layer also writes dL/dW and dL/db next to W and b.

Speed, without hiding the math: each layer owns its work buffers (one set
per batch size) and the activations work in place, so a training step
allocates almost nothing. The price: an array returned by ``forward`` or
``backward`` is overwritten by the next call of the same layer with the same
batch size. Copy it (``.copy()``) if you want to keep it.
"""

import numpy as np


class WorkBuffers:
    """Arrays allocated once and reused: one per (name, shape, dtype)."""

    def __init__(self):
        self._buffers = {}

    def _buffer(self, name, shape, dtype):
        key = (name, shape, np.dtype(dtype))
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = np.zeros(shape, dtype=dtype)
        return buf


class Layer(WorkBuffers):
    """Base class: no parameters, one work buffer per (name, shape)."""

    params = ()  # names of the parameter arrays, e.g. ("W", "b")
    buffers = ()  # names of state arrays that are not trained, e.g. BatchNorm's running mean

    def num_params(self):
        return sum(getattr(self, p).size for p in self.params)


class Linear(Layer):
    """y = x W + b, with x of shape (B, n_in), W (n_in, n_out), b (n_out,).

    Backward (eq-linear in 21.1):
        dL/dW = x^T g,   dL/db = sum_rows(g),   dL/dx = g W^T
    where g = dL/dy. ``init`` is "he" (normal, std = gain·sqrt(1/n_in), for a
    ReLU-family layer after this one) or "xavier" (normal,
    std = sqrt(2/(n_in + n_out)), before tanh or sigmoid).
    """

    params = ("W", "b")

    def __init__(self, n_in, n_out, rng, init="he", gain=np.sqrt(2.0), dtype=np.float32):
        super().__init__()
        for name, value in (("n_in", n_in), ("n_out", n_out)):   # 0 would make an empty layer
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"Linear: {name} must be a whole number ≥ 1, got {value!r}")
        if init == "he":
            std = gain / np.sqrt(n_in)
        elif init == "xavier":
            std = np.sqrt(2.0 / (n_in + n_out))
        else:
            raise ValueError(f"unknown init {init!r}: use 'he' or 'xavier'")
        self.W = (rng.standard_normal((n_in, n_out)) * std).astype(dtype)
        self.b = np.zeros(n_out, dtype=dtype)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)
        self.x = None

    def forward(self, x, train=True):
        self.x = x  # (B, n_in), kept for dL/dW
        y = self._buffer("y", (x.shape[0], self.W.shape[1]), self.W.dtype)
        np.matmul(x, self.W, out=y)
        y += self.b
        return y

    def backward(self, grad, param_grads=True, input_grad=True):
        self.grad = grad   # g, kept for backward_of_backward (a gradient penalty)
        if param_grads:
            np.matmul(self.x.T, grad, out=self.dW)  # (n_in, B) @ (B, n_out)
            np.sum(grad, axis=0, out=self.db)
        if not input_grad:
            return None
        dx = self._buffer("dx", self.x.shape, self.W.dtype)
        np.matmul(grad, self.W.T, out=dx)
        return dx

    def backward_of_backward(self, u):
        """The backward pass of ``backward``'s dx = g W^T (eq-wgan-double in 21.5).

        u = dP/d(dx) for a loss P of the input gradient (B, n_in). Adds
        dP/dW = u^T g to dW (b is not in dx = g W^T: nothing for db) and returns
        dP/dg = u W (B, n_out), for the next layer up."""
        self.dW += u.T @ self.grad    # (n_in, B) @ (B, n_out)
        return u @ self.W


class ReLU(Layer):
    """y = max(x, 0); dy/dx = 1 where y > 0, else 0. Works in place."""

    def forward(self, x, train=True):
        self.y = np.maximum(x, 0, out=x)
        return self.y

    def backward(self, grad, **_):
        mask = self._buffer("mask", grad.shape, bool)
        np.greater(self.y, 0, out=mask)
        grad *= mask
        return grad

    def backward_of_backward(self, u):
        """dx = g · mask is linear in g and the mask is constant almost
        everywhere: dP/dg = u · mask, nothing flows back to the forward pass."""
        return u * self._buffer("mask", u.shape, bool)


class LeakyReLU(Layer):
    """y = x for x > 0, else slope·x; dy/dx = 1 or slope. Works in place."""

    def __init__(self, slope=0.2):
        super().__init__()
        self.slope = slope

    def forward(self, x, train=True):
        # For 0 < slope < 1, max(x, slope·x) is exactly the leaky ReLU.
        scaled = self._buffer("scaled", x.shape, x.dtype)
        np.multiply(x, x.dtype.type(self.slope), out=scaled)
        self.y = np.maximum(x, scaled, out=x)
        return self.y

    def backward(self, grad, **_):
        factor = self._buffer("factor", grad.shape, grad.dtype)
        # factor = 1 where y > 0, slope elsewhere (y has the sign of x)
        np.greater(self.y, 0, out=factor)
        factor *= 1 - self.slope
        factor += self.slope
        grad *= factor
        return grad

    def backward_of_backward(self, u):
        """dx = g · factor is linear in g, and the factor (1 or slope) is constant
        on each side of 0, so its derivative by the forward input is 0 almost
        everywhere: dP/dg = u · factor, and nothing flows back to the forward pass."""
        return u * self._buffer("factor", u.shape, u.dtype)


class Tanh(Layer):
    """y = tanh(x); dy/dx = 1 - y². Works in place."""

    def forward(self, x, train=True):
        self.y = np.tanh(x, out=x)
        return self.y

    def backward(self, grad, **_):
        local = self._buffer("local", grad.shape, grad.dtype)
        np.multiply(self.y, self.y, out=local)
        np.subtract(1, local, out=local)
        grad *= local
        return grad


class Sigmoid(Layer):
    """y = 1 / (1 + e^(-x)); dy/dx = y (1 - y). Works in place.

    Computed as (1 + tanh(x/2)) / 2, which never overflows. The GAN's
    discriminator does not use this layer at its output: its sigmoid is
    folded into the loss (see losses.py), which is the stable way.
    """

    def forward(self, x, train=True):
        x *= 0.5
        np.tanh(x, out=x)
        x += 1
        x *= 0.5
        self.y = x
        return self.y

    def backward(self, grad, **_):
        local = self._buffer("local", grad.shape, grad.dtype)
        np.subtract(1, self.y, out=local)
        local *= self.y
        grad *= local
        return grad


class Dropout(Layer):
    """Inverted dropout: in training, zero each unit with probability p and
    scale the rest by 1/(1-p), so that nothing changes at evaluation time."""

    def __init__(self, p, rng):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.rng = rng
        self.active = False

    def forward(self, x, train=True):
        self.active = train and self.p > 0
        if not self.active:
            return x
        # keep a unit when a random 16-bit integer is ≥ p·65536: P(drop) = p
        # up to 1/65536, and cheaper than drawing floats. The full-range uint16
        # draws are the bytes of the generator's 32-bit words, low half first, i.e.
        # the same numbers as np.frombuffer(rng.bytes(2n), np.uint16), drawn 3.5×
        # faster (rng.bytes goes through uint32 words, tobytes and a slice).
        draws = self.rng.integers(0, 65536, size=x.shape, dtype=np.uint16)
        self.mask = self._buffer("mask", x.shape, x.dtype)
        np.greater_equal(draws, round(self.p * 65536), out=self.mask)
        self.mask *= x.dtype.type(1 / (1 - self.p))
        # Not in place: x may be the stored output y of a Tanh or Sigmoid
        # layer, whose backward still needs it unscaled.
        return np.multiply(x, self.mask, out=self._buffer("y", x.shape, x.dtype))

    def backward(self, grad, **_):
        if self.active:
            grad *= self.mask
        return grad


class Sequential:
    """Layers applied one after the other.

    All parameters of the network live in ONE contiguous vector
    ``flat_params`` (and their gradients in ``flat_grads``); each layer's W and
    b are views into it. The optimizer can therefore update the whole network
    with a handful of vector operations.
    """

    def __init__(self, layers):
        self.layers = list(layers)
        params = [(layer, name) for layer in self.layers for name in layer.params]
        dtypes = {getattr(layer, name).dtype for layer, name in params}
        if len(dtypes) > 1:
            raise ValueError(f"all parameters must share one dtype, got {sorted(map(str, dtypes))}")
        dtype = dtypes.pop() if dtypes else np.float32
        total = sum(getattr(layer, name).size for layer, name in params)
        self.flat_params = np.empty(total, dtype=dtype)
        self.flat_grads = np.zeros(total, dtype=dtype)
        start = 0
        for layer, name in params:
            value = getattr(layer, name)
            stop = start + value.size
            view = self.flat_params[start:stop].reshape(value.shape)
            view[...] = value
            setattr(layer, name, view)
            setattr(layer, "d" + name, self.flat_grads[start:stop].reshape(value.shape))
            start = stop
        # state that is saved with the weights but not trained (no gradient,
        # no optimizer): BatchNorm's running statistics, in one vector too
        buffers = [(layer, name) for layer in self.layers for name in layer.buffers]
        self.flat_buffers = np.empty(sum(getattr(l, n).size for l, n in buffers), dtype=dtype)
        start = 0
        for layer, name in buffers:
            value = getattr(layer, name)
            view = self.flat_buffers[start:start + value.size].reshape(value.shape)
            view[...] = value
            setattr(layer, name, view)
            start += value.size

    @property
    def dtype(self):
        return self.flat_params.dtype

    def forward(self, x, train=True):
        for layer in self.layers:
            x = layer.forward(x, train=train)
        return x

    def backward(self, grad, param_grads=True, input_grad=True):
        """Back-propagate dL/d(output). ``param_grads=False`` leaves the
        parameter gradients alone (the G step only needs dL/dx through D);
        ``input_grad=False`` skips dL/dx of the first layer with parameters
        (nobody needs it for the data or the noise) and the layers before it
        (a Reshape: no parameters, nothing to learn); then it returns None."""
        first = 0 if input_grad else next(
            (i for i, layer in enumerate(self.layers) if layer.params), len(self.layers))
        for i in range(len(self.layers) - 1, first - 1, -1):
            grad = self.layers[i].backward(
                grad, param_grads=param_grads, input_grad=input_grad or i > first
            )
        return grad if input_grad else None

    def backward_of_backward(self, u):
        """After ``backward(seed, param_grads=False)`` has returned v = dD/dx: adds
        dP/dθ to flat_grads for a loss P(v), given u = dP/dv, by running each
        layer's backward_of_backward from the first layer to the last (the
        backward pass of the backward pass). Returns dP/d(seed)."""
        for layer in self.layers:
            if not hasattr(layer, "backward_of_backward"):
                raise TypeError(f"a {type(layer).__name__} layer has no backward_of_backward: a "
                                "gradient penalty needs Linear, ReLU and LeakyReLU layers only")
            u = layer.backward_of_backward(u)
        return u

    def __call__(self, x, train=False):
        """Forward pass for inference: returns a fresh array, not a buffer."""
        return self.forward(x, train=train).copy()

    def num_params(self):
        return self.flat_params.size

    def __repr__(self):
        inner = ", ".join(_describe(layer) for layer in self.layers)
        return f"Sequential({inner})"


def _describe(layer):
    if isinstance(layer, Linear):
        return f"Linear({layer.W.shape[0]}→{layer.W.shape[1]})"
    if isinstance(layer, LeakyReLU):
        return f"LeakyReLU({layer.slope})"
    if isinstance(layer, Dropout):
        return f"Dropout({layer.p})"
    return type(layer).__name__


ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "tanh": Tanh, "sigmoid": Sigmoid}


def mlp(sizes, hidden_activation, output_activation, rng, dtype=np.float32,
        leaky_slope=0.2, dropout=0.0):
    """A multi-layer perceptron: Linear → activation (→ Dropout) … → Linear → output.

    sizes: e.g. (784, 512, 256, 1). ``output_activation`` may be None (the
    network returns logits). He init before ReLU-family layers, Xavier before
    tanh/sigmoid or a logit output.
    """
    for name, act in (("hidden_activation", hidden_activation), ("output_activation", output_activation)):
        if act is not None and act not in ACTIVATIONS:
            raise ValueError(f"{name} must be one of {', '.join(map(repr, ACTIVATIONS))} or None, "
                             f"got {act!r}")
    layers = []
    n_layers = len(sizes) - 1
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == n_layers - 1
        act = output_activation if last else hidden_activation
        if act in ("relu", "leaky_relu"):
            slope = leaky_slope if act == "leaky_relu" else 0.0
            layers.append(Linear(n_in, n_out, rng, "he", np.sqrt(2 / (1 + slope**2)), dtype))
        else:
            layers.append(Linear(n_in, n_out, rng, "xavier", dtype=dtype))
        if act == "leaky_relu":
            layers.append(LeakyReLU(leaky_slope))
        elif act is not None:
            layers.append(ACTIVATIONS[act]())
        if not last and dropout > 0:
            layers.append(Dropout(dropout, rng))
    return Sequential(layers)
