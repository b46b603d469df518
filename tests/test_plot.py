"""Pixels, sample grids, PNGs and the snapshot table."""

import base64
import io
import re

import numpy as np
import pytest

from npgan.plot import (SnapshotTable, grid_images, image_grid, pixels_from_text, pixels_to_text, png_bytes,
                        save_png, to_uint8)


def test_to_uint8_mapping():
    x = np.array([-1.0, 1.0, 0.0, -0.5, 0.5, 2.0, -3.0, 0.999])
    # round((x + 1) / 2 · 255), clipped: 0 → 127.5 → 128 (rint rounds half to even)
    assert list(to_uint8(x)) == [0, 255, 128, 64, 191, 255, 0, 255]
    assert to_uint8(np.zeros((2, 3), np.float64)).dtype == np.uint8
    # round trip with the data loader's mapping x = p / 127.5 - 1 is exact for every pixel
    from npgan.data import to_unit_range
    pixels = np.arange(256, dtype=np.uint8)
    assert np.array_equal(to_uint8(to_unit_range(pixels)), pixels)


def test_image_grid_layout():
    images = np.stack([np.full(784, v) for v in (-1.0, 0.0, 1.0)])
    grid = image_grid(images, n_cols=2, pad=2)
    assert grid.dtype == np.uint8 and grid.shape == (2 * 30 + 2, 2 * 30 + 2)
    assert np.all(grid[2:30, 2:30] == 0)      # image 0: row 0, column 0
    assert np.all(grid[2:30, 32:60] == 128)   # image 1: row 0, column 1
    assert np.all(grid[32:60, 2:30] == 255)   # image 2: row 1, column 0
    assert np.all(grid[32:60, 32:60] == 255)  # the empty fourth slot is padding
    assert np.all(grid[:2] == 255) and np.all(grid[:, 30:32] == 255)  # padding lines
    # (N, 28, 28) works too, and the default is 10 columns
    assert image_grid(images.reshape(3, 28, 28), n_cols=2).tolist() == grid.tolist()
    assert image_grid(np.zeros((100, 784))).shape == (302, 302)
    one = np.linspace(-1, 1, 784).reshape(28, 28)
    np.testing.assert_array_equal(image_grid(one[None], n_cols=1, pad=0), to_uint8(one))


def test_grid_images_undoes_image_grid():
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (7, 784))
    grid = image_grid(images, n_cols=3)                  # 3 rows, the last two slots empty
    cut = grid_images(grid)
    assert cut.dtype == np.uint8 and cut.shape == (9, 28, 28)
    np.testing.assert_array_equal(cut[:7], to_uint8(images).reshape(7, 28, 28))
    assert np.all(cut[7:] == 255)                        # empty slots: padding
    np.testing.assert_array_equal(grid_images(image_grid(images, n_cols=7, pad=0), pad=0),
                                  to_uint8(images).reshape(7, 28, 28))
    # uint8 pixels go back on a canvas as they are (not taken for values in [-1, 1])
    np.testing.assert_array_equal(image_grid(cut[:7], n_cols=3), grid)
    with pytest.raises(ValueError, match="image_grid's layout"):
        grid_images(grid[:-1])
    with pytest.raises(ValueError, match="image_grid's layout"):
        grid_images(grid.astype(np.float32))


def test_pixels_as_text_round_trip():
    pixels = np.arange(784, dtype=np.int64).reshape(28, 28).astype(np.uint8)   # every grey level
    text = pixels_to_text(pixels)
    assert isinstance(text, str) and len(text) == 1048 and text.isascii() and "," not in text
    back = pixels_from_text(text)
    assert back.dtype == np.uint8 and back.shape == (28, 28)
    np.testing.assert_array_equal(back, pixels)
    assert pixels_to_text(pixels.reshape(784)) == text
    with pytest.raises(ValueError, match="784 uint8 pixels"):
        pixels_to_text(pixels.astype(np.float32))
    with pytest.raises(ValueError, match="784 uint8 pixels"):
        pixels_to_text(pixels[:27])
    with pytest.raises(ValueError, match="this text has 783"):
        pixels_from_text(base64.b64encode(pixels.tobytes()[:783]).decode())
    with pytest.raises(ValueError, match="not an image written by pixels_to_text"):
        pixels_from_text("not base64!")


def decode_png(blob):
    import matplotlib.image
    return matplotlib.image.imread(io.BytesIO(blob), format="png")


def test_png_bytes_keeps_the_grey_levels(tmp_path):
    grid = np.arange(256, dtype=np.uint8).reshape(16, 16)
    blob = png_bytes(grid)
    assert blob[:8] == b"\x89PNG\r\n\x1a\n"
    grey = decode_png(blob)
    assert grey.ndim == 2  # an 8-bit greyscale PNG, not RGBA
    assert np.array_equal(np.rint(grey * 255).astype(int), grid)  # every grey level exactly
    assert decode_png(png_bytes(grid, scale=3)).shape[:2] == (48, 48)
    save_png(grid, tmp_path / "g.png")
    assert [p.name for p in tmp_path.iterdir()] == ["g.png"]  # written via *.part and a rename
    assert (tmp_path / "g.png").read_bytes() == blob


def test_snapshot_table_html():
    snaps = {e: np.full((32, 32), 10 * e, dtype=np.uint8) for e in (0, 5, 20)}
    html = SnapshotTable(snaps, caption="表 <1> & co")._repr_html_()
    assert re.findall(r"<th(?:\s[^>]*)?>(.*?)</th>", html) == ["第 0 轮", "第 5 轮", "第 20 轮"]
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 3
    for e, data in zip((0, 5, 20), images):
        rgba = decode_png(base64.b64decode(data))
        assert np.all(np.abs(np.rint(rgba[..., 0] * 255) - 10 * e) <= 1)
    assert "<caption>表 &lt;1&gt; &amp; co</caption>" in html
    html = SnapshotTable(snaps, epochs=[20, 0])._repr_html_()
    assert re.findall(r"<th(?:\s[^>]*)?>(.*?)</th>", html) == ["第 20 轮", "第 0 轮"]
    assert "<caption>" not in html
    with pytest.raises(KeyError):
        SnapshotTable(snaps, epochs=[7])._repr_html_()


def test_snapshot_table_fits_the_text_column():
    """Up to four grids at 165 pixels; more are drawn narrower, never wider in all
    than four (a fifth at 165 ran under the page's sidebar)."""
    snaps = {e: np.zeros((28 * 2, 28 * 2)) for e in range(8)}
    for n, expected in ((1, 165), (4, 165), (5, 130), (8, 78)):
        html = SnapshotTable(snaps, epochs=list(range(n)))._repr_html_()
        widths = [int(w) for w in re.findall(r'width="(\d+)"', html)]
        assert widths == [expected] * n
        assert n * (expected + 8) <= SnapshotTable.TEXT_COLUMN
    assert re.findall(r'width="(\d+)"', SnapshotTable(snaps, width=200)._repr_html_()) == ["200"] * 8


def test_plot_history_draws_two_panels():
    import matplotlib
    matplotlib.use("Agg")
    from npgan.plot import plot_history
    from npgan.train import History

    history = History(records=[(1 + i // 50, i + 1, 1.0, 2.0, 0.6, 0.4) for i in range(150)])
    fig = plot_history(history, steps_per_epoch=50, window=10)
    ax1, ax2 = fig.axes
    assert len(ax1.lines) == 2 and len(ax2.lines) == 3  # two curves each, plus the 0.5 line
    x, y = ax1.lines[0].get_data()
    assert len(x) == 141 and np.allclose(y, 1.0) and x[-1] == pytest.approx(3.0)
    import matplotlib.pyplot as plt
    plt.close(fig)
