"""Figures of section 21.4 (DCGAN), drawn with npgan's own layers.

transposed_conv: how a transposed convolution (4×4 kernel, stride 2, padding 1)
turns a 7×7 map into a 14×14 one, and why a 3×3 kernel at stride 2 leaves a
checkerboard. The counts shown are computed by npgan.conv.ConvTranspose2d
itself: an all-ones input through an all-ones kernel gives, at every output
pixel, the number of kernel taps that land there.
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from npgan.conv import ConvTranspose2d


def coverage(n, k, stride, padding):
    """Output of ConvTranspose2d(1 → 1, k, stride, padding) for an all-ones n×n input
    and an all-ones kernel: how many stamps overlap at each output pixel."""
    layer = ConvTranspose2d(1, 1, k, stride, padding, dtype=np.float64)
    layer.W[...] = 1
    layer.b[...] = 0
    return layer.forward(np.ones((1, 1, n, n)), train=False)[0, 0]


def _grid(ax, values, title, cmap="Blues", vmax=None, annotate=True):
    ax.imshow(values, cmap=cmap, vmin=0, vmax=vmax or values.max())
    if annotate:
        for (r, c), v in np.ndenumerate(values):
            ax.text(c, r, f"{v:.0f}", ha="center", va="center", fontsize=11,
                    color="white" if v > 0.6 * (vmax or values.max()) else "black")
    ax.set_xticks(np.arange(-0.5, values.shape[1], 1), minor=True)
    ax.set_yticks(np.arange(-0.5, values.shape[0], 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=0.8)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    ax.set_title(title, fontsize=11.5)


def transposed_conv():
    fig, axes = plt.subplots(1, 3, figsize=(8.4, 3.3), gridspec_kw={"width_ratios": [7, 14, 13]})

    # (a) the 7×7 input, one pixel marked
    left = np.zeros((7, 7))
    left[2, 3] = 1
    _grid(axes[0], left, "输入：7×7", cmap="Oranges", vmax=1.5, annotate=False)
    axes[0].add_patch(Rectangle((2.5, 1.5), 1, 1, fill=False, edgecolor="darkred", linewidth=2))

    # (b) 4×4, stride 2, padding 1: 14×14, every inner pixel gets exactly 4 stamps
    counts = coverage(7, 4, 2, 1)
    _grid(axes[1], counts, "4×4 核、步长 2：14×14", vmax=4)
    # where the marked pixel's 4×4 stamp lands: rows/cols 2·u − 1 … 2·u + 2 of the output
    axes[1].add_patch(Rectangle((2 * 3 - 1 - 0.5, 2 * 2 - 1 - 0.5), 4, 4, fill=False,
                                edgecolor="orange", linewidth=3))

    # (c) 3×3, stride 2, padding 1: 13×13, a checkerboard of 1, 2 and 4 stamps
    _grid(axes[2], coverage(7, 3, 2, 1), "3×3 核、步长 2：13×13", cmap="Purples", vmax=4)
    fig.tight_layout()
    return fig
