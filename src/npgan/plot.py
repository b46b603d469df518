"""Pictures: sample grids, the per-epoch snapshot table, training curves."""

import base64
import binascii
import html
import io

import numpy as np

CJK_FONTS = ["Noto Sans CJK SC", "Noto Sans CJK JP", "DejaVu Sans"]


def to_uint8(images):
    """Images in [-1, 1] → pixels 0…255: round((x + 1) / 2 · 255), clipped."""
    pixels = (np.asarray(images, dtype=np.float32) + 1) * 127.5
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def _whole(name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be a whole number ≥ {low}, got {value!r}")


def image_grid(images, n_cols=10, pad=2, pad_value=255):
    """Put N images (N, 784) or (N, 28, 28) in [-1, 1] on one uint8 canvas,
    n_cols per row, row after row, with ``pad`` pixels of ``pad_value`` between.
    Images that are already uint8 pixels 0…255 (grid_images, pixels_from_text)
    are placed as they are."""
    for name, value, low in (("n_cols", n_cols, 1), ("pad", pad, 0)):
        _whole(name, value, low)
    images = np.asarray(images)
    pixels = (images if images.dtype == np.uint8 else to_uint8(images)).reshape(-1, 28, 28)
    n = len(pixels)
    n_rows = -(-n // n_cols)
    side = 28 + pad
    canvas = np.full((n_rows * side + pad, n_cols * side + pad), pad_value, dtype=np.uint8)
    for i, img in enumerate(pixels):
        r, c = divmod(i, n_cols)
        canvas[pad + r * side:pad + r * side + 28, pad + c * side:pad + c * side + 28] = img
    return canvas


def grid_images(grid, pad=2):
    """The 28×28 images of a canvas from image_grid (same ``pad``), row after row, as
    uint8 pixels (N, 28, 28): every slot of the canvas, empty ones (all padding) too."""
    _whole("pad", pad, 0)
    grid = np.asarray(grid)
    side = 28 + pad
    if grid.dtype != np.uint8 or grid.ndim != 2 or any((n - pad) % side or n < side + pad for n in grid.shape):
        raise ValueError(f"not a uint8 grid of 28×28 images with padding {pad} (image_grid's "
                         f"layout): got {grid.dtype} {grid.shape}")
    n_rows, n_cols = ((n - pad) // side for n in grid.shape)
    return np.array([grid[pad + r * side:pad + r * side + 28, pad + c * side:pad + c * side + 28]
                     for r in range(n_rows) for c in range(n_cols)])


def pixels_to_text(image):
    """One image's 784 pixels (uint8, 28×28 or flat) as text: base64 of the bytes, row
    by row — a compact column of a committed CSV (pixels_from_text reads it back)."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.size != 784:
        raise ValueError(f"an image is 784 uint8 pixels (to_uint8 makes them), got {image.dtype} {image.shape}")
    return base64.b64encode(image.tobytes()).decode("ascii")


def pixels_from_text(text):
    """The image written by pixels_to_text, as uint8 pixels (28, 28)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError) as err:
        raise ValueError(f"not an image written by pixels_to_text (base64 of 784 bytes): {err}") from None
    if len(raw) != 784:
        raise ValueError(f"an image written by pixels_to_text has 784 bytes, this text has {len(raw)}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(28, 28).copy()


def png_bytes(grid, scale=1):
    """A uint8 grey image → PNG bytes: 8-bit greyscale, every level exact."""
    from PIL import Image  # Pillow comes with matplotlib

    if scale > 1:
        grid = np.kron(grid, np.ones((scale, scale), dtype=np.uint8))
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(grid, dtype=np.uint8), mode="L").save(buf, format="png")
    return buf.getvalue()


def show_grid(grid, scale=2):
    """Show a uint8 grid (from ``image_grid``) in Jupyter, ``scale`` times larger."""
    from IPython.display import Image, display

    display(Image(data=png_bytes(grid, scale=scale)))


def save_png(grid, path):
    """Write a uint8 grid as a PNG file, atomically."""
    from .files import atomic_write

    with atomic_write(path) as f:
        f.write(png_bytes(grid))


class SnapshotTable:
    """An HTML table of sample grids, one column per epoch, headed "第 N 轮" (轮: the book's word for epoch).

    Shows itself in Jupyter (``_repr_html_``) and in the built book; the
    images are embedded as PNG data, so the table needs no other file.
    ``width``: of each grid in pixels; by default 165 for up to four epochs, and
    narrower for more, so that the table always fits the book's text column
    (about 700 pixels: a fifth column at 165 had slid under the page's sidebar)."""

    TEXT_COLUMN = 692   # pixels for the grids and their 4-pixel padding: 4 × (165 + 8)

    def __init__(self, snapshots, epochs=None, caption=None, width=None):
        self.snapshots = snapshots
        self.epochs = sorted(snapshots) if epochs is None else list(epochs)
        self.caption = caption
        self.width = width or min(165, self.TEXT_COLUMN // max(1, len(self.epochs)) - 8)

    def _repr_html_(self):
        head = "".join(f'<th style="text-align:center">第 {e} 轮</th>' for e in self.epochs)
        cells = []
        for e in self.epochs:
            data = base64.b64encode(png_bytes(self.snapshots[e])).decode("ascii")
            cells.append(f'<td style="padding:4px"><img src="data:image/png;base64,{data}" '
                         f'width="{self.width}" alt="第 {e} 轮" '
                         'style="image-rendering:pixelated;max-width:none"></td>')
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return (f'<table class="npgan-snapshots">{caption}<thead><tr>{head}</tr></thead>'
                f"<tbody><tr>{''.join(cells)}</tr></tbody></table>")


def use_chinese_font():
    """Let matplotlib draw Chinese labels (needs Debian's fonts-noto-cjk)."""
    import matplotlib

    matplotlib.rcParams["font.family"] = "sans-serif"
    matplotlib.rcParams["font.sans-serif"] = CJK_FONTS
    matplotlib.rcParams["axes.unicode_minus"] = False


def smooth(values, window):
    """Moving average over ``window`` iterations (the 'valid' part)."""
    values = np.asarray(values, dtype=np.float64)
    if window <= 1 or len(values) < window:
        return values
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def plot_history(history, steps_per_epoch=None, window=100):
    """Two panels: D and G losses; D(x) and D(G(z)). Returns the figure."""
    import matplotlib.pyplot as plt

    use_chinese_font()
    it = history.column("iteration")
    x = it / steps_per_epoch if steps_per_epoch else it
    xs = x[len(x) - len(smooth(it, window)):] if len(it) >= window else x
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax1.plot(xs, smooth(history.column("d_loss"), window), label="D 的损失")
    ax1.plot(xs, smooth(history.column("g_loss"), window), label="G 的损失")
    ax1.set_title("损失（滑动平均）")
    ax2.plot(xs, smooth(history.column("d_real"), window), label="D(x)：真样本")
    ax2.plot(xs, smooth(history.column("d_fake"), window), label="D(G(z))：假样本")
    ax2.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax2.set_ylim(0, 1)
    ax2.set_title("判别器的输出（滑动平均）")
    for ax in (ax1, ax2):
        ax.set_xlabel("轮" if steps_per_epoch else "迭代次数")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
