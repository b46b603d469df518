"""The floor of npgan's DCGAN step for the speed benchmark: the matrix
products of one real train_step, recorded, then timed alone."""

import numpy as np


class _Recorder:
    """Stands in for the numpy module inside npgan.layers and npgan.conv for one
    step: every np.matmul(a, b, out=...) is recorded with copies of a and b in the
    same memory layout (a transposed view stays a transposed view), so that the
    floor multiplies exactly the matrices npgan's step multiplies."""

    def __init__(self):
        self.products = []

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def _same_layout(a):
        if a.flags.c_contiguous:
            return a.copy()
        return np.ascontiguousarray(a.T).T     # a transposed view of a fresh copy

    def matmul(self, a, b, out=None, **kw):
        self.products.append((self._same_layout(a), self._same_layout(b),
                              np.empty((a.shape[0], b.shape[1]), dtype=out.dtype if out is not None
                                       else np.result_type(a, b))))
        return np.matmul(a, b, out=out, **kw)


def floor_products(model, x_real):
    """The (a, b, out) triples of one model.train_step(x_real), recorded."""
    import npgan.conv
    import npgan.layers

    recorder = _Recorder()
    saved = npgan.conv.np, npgan.layers.np
    npgan.conv.np = npgan.layers.np = recorder
    try:
        model.train_step(x_real)
    finally:
        npgan.conv.np, npgan.layers.np = saved
    return recorder.products
