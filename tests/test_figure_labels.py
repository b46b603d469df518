"""Every label of the chapter's own figures (images/make_figures.py, images/gan_diagrams.py)
is legible at the width the page shows the figure: at least MIN_LABEL_PX CSS pixels high
when the text column is TEXT_WIDTH_PX wide (the constants and how they were measured are in
make_figures.py)."""

import sys
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "images"))
import make_figures  # noqa: E402


@pytest.mark.parametrize("name", sorted(make_figures.FIGURES))
def test_every_label_is_legible_on_the_page(name):
    import matplotlib.pyplot as plt

    make_figures.use_chinese_font()
    fig = make_figures.FIGURES[name]()
    try:
        fraction = make_figures.shown_fraction(name)
        px, text = make_figures.smallest_label_px(fig, fraction)
    finally:
        plt.close(fig)
    assert px >= make_figures.MIN_LABEL_PX, (
        f"{name}: the label {text!r} is {px:.1f} px high at {fraction:.0%} of the "
        f"{make_figures.TEXT_WIDTH_PX}-px text column; at least {make_figures.MIN_LABEL_PX} px wanted")


def test_the_measure_sees_a_small_label(tmp_path):
    # the check itself: a 6-pt label on a 10-inch figure shown at 80% is about 4.5 px
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3))
    ax.text(0.5, 0.5, "小字", fontsize=6)
    ax.tick_params(labelsize=14)
    px, text = make_figures.smallest_label_px(fig, 0.8)
    plt.close(fig)
    assert text == "小字" and px == pytest.approx(6 * make_figures.TEXT_WIDTH_PX * 0.8 / 720)
    (tmp_path / "p.md").write_text("```{figure} ../images/out/x.png\n:name: fig-x\n:width: 80%\n\n图\n```\n",
                                   encoding="utf-8")
    assert make_figures.shown_fraction("x", book=tmp_path) == 0.8
    with pytest.raises(make_figures.FigureError):
        make_figures.shown_fraction("y", book=tmp_path)
