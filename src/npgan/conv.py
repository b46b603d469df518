"""Convolution layers for images, NCHW (chapter 21.6, DCGAN).

Conv2d, ConvTranspose2d, Upsample, Reshape and Flatten, in the explicit
forward/backward style of layers.py (BatchNorm: batchnorm.py). A convolution is turned into ONE large
matrix multiply (im2col): every k×k patch of the input becomes a column of a
matrix, and the kernel a matrix of shape (out channels, C·k·k).

    im2col:  x (B, C, H, W) → cols (C·k·k, Ho·Wo·B)   a strided view, copied once
    col2im:  cols → x, adding the k·k shifted copies back (the adjoint of im2col)

Conv2d forward is  Y = W cols(x);  its input gradient is col2im(Wᵀ G).
ConvTranspose2d is exactly that input gradient run forward:
Y = col2im(Wᵀ X), and its own input gradient is W cols(G). So the two layers
share the same two helpers, with the roles swapped.

Speed: inside the two convolution layers the maps are kept channel-first
and batch-last, (C, H, W, B), so that every im2col copy and every col2im
addition runs along B contiguous numbers (with NCHW the innermost run would
be a row of 7 or 14 pixels, and NumPy's per-run overhead would dominate).
On their own the layers take and return NCHW arrays, with one transpose at
each end (``to_chwb``, ``from_chwb``; for the two convolutions in MapLayer). Built with ``batch_last=True`` (as the
DCGAN's networks are), every 4-D layer here takes and returns (C, H, W, B)
maps instead, so the maps stay batch-last from the first Reshape to the last
Flatten, and only those two transpose. The arithmetic is the same in both
layouts (the tests compare them).

Weights have PyTorch's shapes: Conv2d (C_out, C_in, k, k), ConvTranspose2d
(C_in, C_out, k, k), so that the tests can hand the same arrays to torch.
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .layers import Layer


def conv_out_size(n, k, stride, padding):
    return (n + 2 * padding - k) // stride + 1


# Rows per piece of a blocked transpose: a 64-row stripe of both arrays stays in the
# cache (measured up to 4× faster than one np.copyto of the transposed view).
TRANSPOSE_BLOCK = 64


def to_chwb(x, out):
    """x (B, C, H, W) → out (C, H, W, B), which may be a strided view (a padded
    buffer's interior)."""
    B = x.shape[0]
    if x.flags.c_contiguous and out.flags.c_contiguous:
        flat, dst = x.reshape(B, -1), out.reshape(-1, B)
        for r in range(0, dst.shape[0], TRANSPOSE_BLOCK):
            dst[r:r + TRANSPOSE_BLOCK] = flat[:, r:r + TRANSPOSE_BLOCK].T
    else:   # one channel at a time: each piece fits in the cache
        for c in range(x.shape[1]):
            out[c] = x[:, c].transpose(1, 2, 0)
    return out


def from_chwb(src, out):
    """src (C, H, W, B) (any strides) → out (B, C, H, W)."""
    B = out.shape[0]
    if src.flags.c_contiguous and out.flags.c_contiguous:
        flat, dst = src.reshape(-1, B), out.reshape(B, -1)
        for r in range(0, flat.shape[0], TRANSPOSE_BLOCK):
            dst[:, r:r + TRANSPOSE_BLOCK] = flat[r:r + TRANSPOSE_BLOCK].T
    else:
        for c in range(src.shape[0]):
            out[:, c] = src[c].transpose(2, 0, 1)
    return out


def im2col(xp, k, stride, out_hw, cols):
    """Patches of the padded map xp (C, Hp, Wp, B) into cols (C, k, k, Ho, Wo, B):
    cols[c, i, j, u, v, b] = xp[c, stride·u + i, stride·v + j, b]. One strided copy."""
    C, B = xp.shape[0], xp.shape[3]
    Ho, Wo = out_hw
    sc, sh, sw, sb = xp.strides
    patches = as_strided(xp, (C, k, k, Ho, Wo, B), (sc, sh, sw, stride * sh, stride * sw, sb),
                         writeable=False)
    np.copyto(cols, patches)
    return cols


def col2im(cols, stride, xp):
    """The adjoint of im2col: xp (C, Hp, Wp, B) = Σ_ij cols[:, i, j] added at the
    shifted, strided positions. k·k strided additions (the patches overlap)."""
    C, k, _, Ho, Wo, B = cols.shape
    xp[...] = 0
    for i in range(k):
        for j in range(k):
            xp[:, i:i + stride * (Ho - 1) + 1:stride, j:j + stride * (Wo - 1) + 1:stride] += cols[:, i, j]
    return xp


def _kernel_init(rng, shape, fan_in, gain, dtype):
    # He-style normal init, std = gain / sqrt(fan_in) (as layers.Linear)
    return (rng.standard_normal(shape) * (gain / np.sqrt(fan_in))).astype(dtype)


class MapLayer(Layer):
    """A layer that computes on (C, H, W, B) maps. It takes and returns them in
    that layout if ``batch_last``, else as NCHW, transposed at each end: the
    only place where the two layouts differ."""

    def __init__(self, batch_last=False):
        super().__init__()
        self.batch_last = batch_last

    def _maps_shape(self, a):
        """(C, H, W, B) of an array in the layer's layout."""
        return a.shape if self.batch_last else a.shape[1:] + a.shape[:1]

    def _as_maps(self, a, name):
        """a as a contiguous (C, H, W, B) array: a itself if it already is one,
        else the work buffer ``name``."""
        if self.batch_last:
            return np.ascontiguousarray(a)
        return to_chwb(a, self._buffer(name, self._maps_shape(a), a.dtype))

    def _into_maps(self, a, out):
        """a copied into out, a (C, H, W, B) array or view (a padded buffer's interior)."""
        if self.batch_last:
            out[...] = a
            return out
        return to_chwb(a, out)

    def _from_maps(self, src, name):
        """src (C, H, W, B), any strides, in the layer's layout: src itself if it
        can be, else the work buffer ``name``."""
        if self.batch_last:
            if src.flags.c_contiguous:
                return src
            out = self._buffer(name, src.shape, src.dtype)
            out[...] = src
            return out
        C, H, W, B = src.shape
        return from_chwb(src, self._buffer(name, (B, C, H, W), src.dtype))


class Conv2d(MapLayer):
    """y[b, f] = Σ_c W[f, c] ⋆ x[b, c] + bias[f], with stride s and zero padding p.

    Ho = (H + 2p − k) // s + 1. Backward, with G = dL/dy as a (F, Ho·Wo·B) matrix:
        dL/dW = G colsᵀ,   dL/db = Σ G,   dL/dx = col2im(Wᵀ G)
    """

    params = ("W", "b")

    def __init__(self, c_in, c_out, k, stride=1, padding=0, rng=None, gain=np.sqrt(2.0),
                 dtype=np.float32, batch_last=False):
        super().__init__(batch_last)
        rng = rng if rng is not None else np.random.default_rng(0)
        self.k, self.stride, self.padding = k, stride, padding
        self.W = _kernel_init(rng, (c_out, c_in, k, k), c_in * k * k, gain, dtype)
        self.b = np.zeros(c_out, dtype=dtype)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)

    def forward(self, x, train=True):
        C, H, W, B = self.chwb_shape = self._maps_shape(x)
        k, s, p, F = self.k, self.stride, self.padding, self.W.shape[0]
        Ho, Wo = self.out_hw = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
        dt = self.W.dtype
        xp = self._buffer("xp", (C, H + 2 * p, W + 2 * p, B), dt)   # borders stay 0
        self._into_maps(x, xp[:, p:p + H, p:p + W])
        self.cols = im2col(xp, k, s, (Ho, Wo), self._buffer("cols", (C, k, k, Ho, Wo, B), dt))
        y_mat = self._buffer("y_mat", (F, Ho, Wo, B), dt)
        np.matmul(self.W.reshape(F, -1), self.cols.reshape(C * k * k, -1), out=y_mat.reshape(F, -1))
        y_mat += self.b[:, None, None, None]
        return self._from_maps(y_mat, "y")

    def backward(self, grad, param_grads=True, input_grad=True):
        C, H, W, B = self.chwb_shape
        k, s, p, F = self.k, self.stride, self.padding, self.W.shape[0]
        dt = self.W.dtype
        g2 = self._as_maps(grad, "g_mat").reshape(F, -1)
        if param_grads:
            np.matmul(g2, self.cols.reshape(C * k * k, -1).T, out=self.dW.reshape(F, -1))
            np.sum(g2, axis=1, out=self.db)
        if not input_grad:
            return None
        dcols = self._buffer("dcols", self.cols.shape, dt)
        np.matmul(self.W.reshape(F, -1).T, g2, out=dcols.reshape(C * k * k, -1))
        dxp = col2im(dcols, s, self._buffer("dxp", (C, H + 2 * p, W + 2 * p, B), dt))
        return self._from_maps(dxp[:, p:p + H, p:p + W], "dx")


class ConvTranspose2d(MapLayer):
    """The transposed convolution ("fractionally strided"): each input pixel
    stamps a k×k copy of the kernel, scaled by its value, onto the output at
    stride s; overlapping stamps add up; p rows/columns are cropped off each border.

    Ho = (H − 1)·s − 2p + k + q   (7 → 14 for k = 4, s = 2, p = 1, q = 0).
    ``output_padding`` q (< s) adds q rows and columns at the bottom and the right,
    as PyTorch's: a 5×5 kernel with s = 2, p = 2 gives 7 → 13, and 14 with q = 1.
    Forward:  y = crop(col2im(Wᵀ X)) + bias, X the input as a (C_in, H·W·B) matrix,
              cropped p from the top and left, p − q from the bottom and right.
    Backward: with cols = im2col(pad(G)), G placed where it was cropped out:
              dL/dW = X colsᵀ,  dL/dx = W cols.
    """

    params = ("W", "b")

    def __init__(self, c_in, c_out, k, stride=1, padding=0, rng=None, gain=np.sqrt(2.0),
                 dtype=np.float32, batch_last=False, output_padding=0):
        super().__init__(batch_last)
        if not 0 <= output_padding < max(stride, 1):
            raise ValueError(f"ConvTranspose2d: output_padding must be in [0, stride) = [0, {stride}), "
                             f"got {output_padding}")
        rng = rng if rng is not None else np.random.default_rng(0)
        self.k, self.stride, self.padding, self.output_padding = k, stride, padding, output_padding
        # fan-in of an output pixel: each sees about c_in·k²/s² input terms
        self.W = _kernel_init(rng, (c_in, c_out, k, k), c_in * k * k / stride**2, gain, dtype)
        self.b = np.zeros(c_out, dtype=dtype)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)

    def forward(self, x, train=True):
        C, H, W, B = self.chwb_shape = self._maps_shape(x)
        k, s, p, F = self.k, self.stride, self.padding, self.W.shape[1]
        q = self.output_padding   # q more rows and columns below and right, zero before the bias
        Hf, Wf = self.full_hw = (H - 1) * s + k + q, (W - 1) * s + k + q   # before cropping the padding
        dt = self.W.dtype
        # kept for dL/dW (batch-last: x itself, which the layer before does not
        # overwrite within a step)
        x_mat = self.x_mat = self._as_maps(x, "x_mat")
        cols = self._buffer("cols", (F, k, k, H, W, B), dt)
        np.matmul(self.W.reshape(C, -1).T, x_mat.reshape(C, -1), out=cols.reshape(F * k * k, -1))
        yp = col2im(cols, s, self._buffer("yp", (F, Hf, Wf, B), dt))
        inner = yp[:, p:Hf - p, p:Wf - p]
        inner += self.b[:, None, None, None]
        return self._from_maps(inner, "y")

    def backward(self, grad, param_grads=True, input_grad=True):
        C, H, W, B = self.chwb_shape
        k, s, p, F = self.k, self.stride, self.padding, self.W.shape[1]
        Hf, Wf = self.full_hw
        dt = self.W.dtype
        gp = self._buffer("gp", (F, Hf, Wf, B), dt)    # borders stay 0
        self._into_maps(grad, gp[:, p:Hf - p, p:Wf - p])
        cols = im2col(gp, k, s, (H, W), self._buffer("gcols", (F, k, k, H, W, B), dt))
        c2 = cols.reshape(F * k * k, -1)
        if param_grads:
            np.matmul(self.x_mat.reshape(C, -1), c2.T, out=self.dW.reshape(C, -1))
            np.sum(grad, axis=(1, 2, 3) if self.batch_last else (0, 2, 3), out=self.db)
        if not input_grad:
            return None
        dx_mat = self._buffer("dx_mat", (C, H, W, B), dt)
        np.matmul(self.W.reshape(C, -1), c2, out=dx_mat.reshape(C, -1))
        return self._from_maps(dx_mat, "dx")


class Upsample(Layer):
    """Nearest-neighbour upsampling by an integer factor s: each pixel becomes an
    s×s block. Followed by an ordinary convolution it is the "resize-convolution"
    that Odena et al. (2016) propose against the checkerboard artefacts of
    transposed convolutions. Backward: dL/dx = the sum of dL/dy over each block."""

    def __init__(self, factor=2, batch_last=False):
        super().__init__()
        self.factor, self.batch_last = factor, batch_last

    def forward(self, x, train=True):
        s = self.factor
        if self.batch_last:   # (C, H, W, B)
            C, H, W, B = x.shape
            y = self._buffer("y", (C, H * s, W * s, B), x.dtype)
            y.reshape(C, H, s, W, s, B)[...] = x[:, :, None, :, None, :]
            return y
        B, C, H, W = x.shape
        y = self._buffer("y", (B, C, H * s, W * s), x.dtype)
        y.reshape(B, C, H, s, W, s)[...] = x[:, :, :, None, :, None]
        return y

    def backward(self, grad, **_):
        s = self.factor
        if self.batch_last:
            C, H, W, B = grad.shape
            dx = self._buffer("dx", (C, H // s, W // s, B), grad.dtype)
            np.sum(grad.reshape(C, H // s, s, W // s, s, B), axis=(2, 4), out=dx)
            return dx
        B, C, H, W = grad.shape
        dx = self._buffer("dx", (B, C, H // s, W // s), grad.dtype)
        np.sum(grad.reshape(B, C, H // s, s, W // s, s), axis=(3, 5), out=dx)
        return dx


class Reshape(Layer):
    """(B, …) → (B, *shape); the gradient goes back to the input's shape. No copy.

    batch_last: (B, …) → (*shape, B), a transposed copy: where a network's maps
    become batch-last (see the module's docstring)."""

    def __init__(self, *shape, batch_last=False):
        super().__init__()
        self.shape, self.batch_last = shape, batch_last

    def forward(self, x, train=True):
        self.in_shape = x.shape
        if self.batch_last:
            y = self._buffer("y", (*self.shape, x.shape[0]), x.dtype)
            return to_chwb(x.reshape(x.shape[0], *self.shape), y)
        return x.reshape(x.shape[0], *self.shape)

    def backward(self, grad, **_):
        if self.batch_last:
            dx = self._buffer("dx", self.in_shape, grad.dtype)
            from_chwb(grad, dx.reshape(grad.shape[-1], *grad.shape[:-1]))
            return dx
        return grad.reshape(self.in_shape)


class Flatten(Layer):
    """(B, C, H, W) → (B, C·H·W); batch_last: (C, H, W, B) → (B, C·H·W), a
    transposed copy, where a network's maps go back to rows."""

    def __init__(self, batch_last=False):
        super().__init__()
        self.batch_last = batch_last

    def forward(self, x, train=True):
        self.in_shape = x.shape
        if self.batch_last:
            B = x.shape[-1]
            y = self._buffer("y", (B, x.size // B), x.dtype)
            from_chwb(x, y.reshape(B, *x.shape[:-1]))
            return y
        return x.reshape(x.shape[0], -1)

    def backward(self, grad, **_):
        if self.batch_last:
            dx = self._buffer("dx", self.in_shape, grad.dtype)
            return to_chwb(grad.reshape(grad.shape[0], *self.in_shape[:-1]), dx)
        return grad.reshape(self.in_shape)
