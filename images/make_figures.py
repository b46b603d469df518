"""Draw the chapter's own figures into images/out/ (run by `make figures`).

    python images/make_figures.py                 # all figures, from the committed CSV
    python images/make_figures.py --only gan_dataflow gradient_saturation
    python images/make_figures.py --from-tsv      # first re-derive images/gan_zoo_monthly.csv
    python images/make_figures.py --from-tsv path/to/gan-zoo.tsv

The GAN-zoo figure needs only the committed monthly counts
(images/gan_zoo_monthly.csv). The counts are derived from the-gan-zoo list
(a TSV with columns Year, Month, Abbr., Title, ...), which is never committed;
it is read only when --from-tsv is given.
"""

import argparse
import csv
import datetime
import io
import re
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import gan_diagrams  # noqa: E402
import dcgan_figures  # noqa: E402

try:
    import npgan  # noqa: F401
except ImportError:  # the package is not installed: run from the repository's src/
    sys.path.insert(0, str(REPO / "src"))
from npgan.files import atomic_write  # noqa: E402
from npgan.plot import use_chinese_font  # noqa: E402

CSV_PATH = HERE / "gan_zoo_monthly.csv"
OUT_DIR = HERE / "out"
TSV_CANDIDATES = [REPO.parent / "shared" / "data" / "gan-zoo.tsv",
                  Path("/work/shared/data/gan-zoo.tsv")]
CSV_HEADER = ["year", "month", "count", "cumulative"]
DPI = 150
# Legible at the page's width: the book's text column is about 680 px wide (sphinx-book-theme
# in a 1280-px window, as the browser test opens the pages; measured in its screenshots), and
# a figure shown with :width: p% is scaled to p% of that. Every label of our figures must then
# be at least MIN_LABEL_PX high in CSS pixels (tests/test_figure_labels.py).
TEXT_WIDTH_PX = 680
MIN_LABEL_PX = 12
BOOK = REPO / "book"

# Papers the chapter discusses, with the month of their first arXiv version
# (the same months the-gan-zoo lists for them).
MILESTONES = [("GAN", 2014, 6), ("CGAN", 2014, 11), ("InfoGAN", 2016, 6),
              ("SRGAN", 2016, 9), ("CycleGAN", 2017, 3), ("StarGAN", 2017, 11)]


class FigureError(Exception):
    """A bad input file: the message says which file, what was wrong and what to do."""


# ---------------------------------------------------------------- files

def write_atomic(path, data):
    """Write bytes to ``path`` through a temporary file in the same folder.
    An unchanged file is left alone (so the book build does not re-read its pages).
    Returns True if the file was written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and path.read_bytes() == data:
        return False
    with atomic_write(path) as f:
        f.write(data)
    return True


def shown_fraction(name, book=BOOK):
    """The :width: of the page's figure directive that shows images/out/<name>.png, as a
    fraction of the text column (1.0 without a :width:). Raises FigureError if no page shows it."""
    pattern = re.compile(r"```\{figure\}\s+\S*images/out/" + re.escape(name) + r"\.png\s*\n"
                         r"((?::[\w-]+:[^\n]*\n)*)")
    for page in sorted(book.glob("*.md")):
        m = pattern.search(page.read_text(encoding="utf-8"))
        if m:
            width = re.search(r":width:\s*(\d+(?:\.\d+)?)%", m[1])
            return float(width[1]) / 100 if width else 1.0
    raise FigureError(f"no page in {book} shows images/out/{name}.png in a figure directive")


def smallest_label_px(fig, fraction):
    """(CSS px, text) of the smallest visible label when the figure is shown at
    ``fraction`` of the text column (the PNG is figwidth × DPI pixels wide)."""
    from matplotlib.text import Text

    fig.canvas.draw()                       # creates the tick labels
    px_per_pt = TEXT_WIDTH_PX * fraction / (fig.get_figwidth() * 72)
    labels = [(t.get_fontsize() * px_per_pt, t.get_text()) for t in fig.findobj(Text)
              if t.get_visible() and t.get_text().strip()]
    return min(labels)


def save_figure(fig, path):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    plt.close(fig)
    written = write_atomic(path, buf.getvalue())
    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    print(f"{'wrote' if written else 'unchanged'} {shown}")


# ---------------------------------------------------------------- GAN zoo counts

def monthly_counts_from_tsv(tsv_path):
    """Count the papers of each month in the-gan-zoo TSV.

    Returns rows (year, month, count, cumulative) for every month from the
    first to the last listed one, months without a paper included (count 0)."""
    tsv_path = Path(tsv_path)
    try:
        text = tsv_path.read_text(encoding="utf-8")
    except OSError as e:
        raise FigureError(f"cannot read the GAN-zoo list {tsv_path}: {e}") from e
    lines = text.splitlines()
    if not lines:
        raise FigureError(f"{tsv_path} is empty; expected the-gan-zoo TSV (Year, Month, Abbr., ...)")
    header = lines[0].split("\t")
    if header[:2] != ["Year", "Month"]:
        raise FigureError(f"{tsv_path}: the first two columns are {header[:2]}, expected "
                          "['Year', 'Month'] (the-gan-zoo's gans.tsv)")
    counts = {}
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        try:
            year, month = int(fields[0]), int(fields[1])
        except (ValueError, IndexError):
            raise FigureError(f"{tsv_path} line {n}: Year/Month {fields[:2]} are not whole "
                              "numbers; fix or delete that line") from None
        if not (2000 <= year <= 2100 and 1 <= month <= 12):
            raise FigureError(f"{tsv_path} line {n}: {year}-{month} is not a valid month")
        counts[year, month] = counts.get((year, month), 0) + 1
    if not counts:
        raise FigureError(f"{tsv_path} lists no papers")
    rows, total = [], 0
    (year, month), last = min(counts), max(counts)
    while (year, month) <= last:
        c = counts.get((year, month), 0)
        total += c
        rows.append((year, month, c, total))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return rows


def csv_bytes(rows):
    last_year, last_month, _, total = rows[-1]
    out = io.StringIO()
    out.write("# Named GAN papers per month, counted from the-gan-zoo by Avinash Hindupur,\n"
              "# https://github.com/hindupuravinash/the-gan-zoo (list file gans.tsv, column\n"
              f"# Year/Month). The list used ends with the papers of {last_year}-{last_month:02d}:"
              f" {total} papers in all.\n"
              "# Derived by images/make_figures.py --from-tsv; the list itself is not committed.\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def read_monthly_csv(path=CSV_PATH):
    """The committed counts → (years, months, counts, cumulative) int arrays, checked."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise FigureError(f"cannot read {path}: {e}; regenerate it with "
                          "`python images/make_figures.py --from-tsv PATH/gan-zoo.tsv`") from e
    body = [line for line in text.splitlines() if line and not line.startswith("#")]
    reader = csv.reader(body)
    header = next(reader, None)
    if header != CSV_HEADER:
        raise FigureError(f"{path}: header {header}, expected {CSV_HEADER}")
    rows = []
    for n, row in enumerate(reader, start=2):
        try:
            rows.append([int(v) for v in row])
        except ValueError:
            raise FigureError(f"{path}: data row {n} {row} is not four whole numbers") from None
        if len(rows[-1]) != 4:
            raise FigureError(f"{path}: data row {n} has {len(row)} fields, expected 4")
    if not rows:
        raise FigureError(f"{path} has no data rows")
    data = np.array(rows, dtype=np.int64)
    if not np.array_equal(np.cumsum(data[:, 2]), data[:, 3]):
        raise FigureError(f"{path}: the column 'cumulative' is not the running sum of 'count'")
    return data[:, 0], data[:, 1], data[:, 2], data[:, 3]


def find_tsv(given):
    if given:
        return Path(given)
    for candidate in TSV_CANDIDATES:
        if candidate.is_file():
            return candidate
    raise FigureError("--from-tsv: no gan-zoo.tsv found at "
                      + " or ".join(str(c) for c in TSV_CANDIDATES)
                      + "; pass its path: --from-tsv PATH/gan-zoo.tsv")


# ---------------------------------------------------------------- figures

def fig_gan_zoo_cumulative(csv_path=CSV_PATH):
    years, months, counts, cumulative = read_monthly_csv(csv_path)
    dates = [datetime.date(int(y), int(m), 15) for y, m in zip(years, months)]
    index = {(int(y), int(m)): i for i, (y, m) in enumerate(zip(years, months))}

    fig, (ax, ax_log) = plt.subplots(1, 2, figsize=(7.6, 3.9),
                                     gridspec_kw={"width_ratios": [1.6, 1]})
    ax.bar(dates, counts, width=25, color="#9ecae1", label="当月新增")
    ax.plot(dates, cumulative, color="#08519c", lw=2.2, label="累计数量")
    ax.set_ylabel("论文数（篇）")
    ax.set_title("the-gan-zoo 收录的命名 GAN 论文")
    ax.grid(alpha=0.3)
    ax.set_ylim(0, cumulative[-1] * 1.12)

    for name, y, m in MILESTONES:
        i = index.get((y, m))
        if i is None:
            continue
        ax.plot(dates[i], cumulative[i], "o", color="#d94801", ms=5, zorder=3)
        ax.annotate(name, (dates[i], cumulative[i]), xytext=(-4, 16 + 12 * (i % 2)),
                    textcoords="offset points", ha="right", fontsize=10, color="#a63603",
                    arrowprops=dict(arrowstyle="-", color="#a63603", lw=0.7))

    passed = np.flatnonzero(cumulative >= 500)
    if passed.size:
        i = passed[0]
        ax.annotate(f"{years[i]} 年 {months[i]} 月：累计 {cumulative[i]} 篇\n（首次超过 500）",
                    (dates[i], cumulative[i]), xytext=(-75, -10), textcoords="offset points",
                    ha="right", va="center", fontsize=10,
                    arrowprops=dict(arrowstyle="->", color="black", lw=0.9))
    ax.legend(loc="center left", frameon=False, fontsize=10)
    ax.set_xlim(datetime.date(int(years[0]), 1, 1), dates[-1] + datetime.timedelta(days=45))

    # The same curve on a log scale: a straight stretch means exponential growth.
    start = int(np.flatnonzero(cumulative >= 10)[0])
    t = np.arange(len(cumulative), dtype=np.float64)
    slope, intercept = np.polyfit(t[start:], np.log(cumulative[start:]), 1)
    doubling = np.log(2) / slope
    ax_log.semilogy(dates, cumulative, color="#08519c", lw=2.2, label="累计数量")
    ax_log.semilogy(dates[start:], np.exp(intercept + slope * t[start:]), "--", color="#d94801",
                    lw=1.3, label=f"指数拟合：约每\n{doubling:.1f} 个月翻一番")
    ax_log.set_title("对数纵轴")
    ax_log.grid(alpha=0.3, which="both")
    ax_log.legend(loc="upper left", frameon=False, fontsize=10)

    for a in (ax, ax_log):
        a.xaxis.set_major_locator(matplotlib.dates.YearLocator())
        a.xaxis.set_major_formatter(matplotlib.dates.DateFormatter("%Y"))
        a.set_xlabel("arXiv 首次公开的年份")
    fig.text(0.99, 0.01, "数据：the-gan-zoo（Avinash Hindupur），按月统计",
             ha="right", va="bottom", fontsize=10, color="#555555")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def fig_gradient_saturation():
    s = np.linspace(-7, 4, 500)
    saturating = -np.logaddexp(0, s)          # log(1 − σ(s)) = −softplus(s)
    non_saturating = np.logaddexp(0, -s)      # −log σ(s) = softplus(−s)
    c_sat, c_ns = "#cb181d", "#2171b5"

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8.0, 4.1))
    ax1.plot(s, saturating, color=c_sat, lw=2.2, label=r"原始目标 $\log(1-D(G(z)))$（G 求最小）")
    ax1.plot(s, non_saturating, color=c_ns, lw=2.2, label=r"非饱和目标 $-\log D(G(z))$（G 求最小）")
    ax1.axvspan(-7, -4, color="#fee0d2", alpha=0.6, lw=0)
    ax1.text(-5.5, -2.6, "训练初期：\n判别器轻易\n识破假样本", ha="center", va="center",
             fontsize=10.5, color="#a50f15")
    ax1.set_xlim(-7, 4)
    ax1.set_ylim(-5, 7.5)
    ax1.set_xlabel(r"判别器对假样本输出的 logit  $s$，  $D(G(z))=\sigma(s)$", fontsize=10.5)
    ax1.set_ylabel("生成器的损失", fontsize=10.5)
    ax1.set_title("两种生成器损失（横轴为 logit）")
    ax1.axhline(0, color="grey", lw=0.6)
    ax1.grid(alpha=0.3)
    ax1.legend(loc="upper right", frameon=False, fontsize=10.5)
    top = ax1.secondary_xaxis("top", functions=(lambda v: v, lambda v: v))
    ticks = [0.001, 0.01, 0.1, 0.5, 0.9]
    top.set_xticks([np.log(p / (1 - p)) for p in ticks], [f"{p:g}" for p in ticks])
    top.set_xlabel(r"$D(G(z))$", fontsize=10.5)
    top.tick_params(labelsize=10.5)

    dd = np.linspace(0, 1, 201)
    ax2.plot(dd, dd, color=c_sat, lw=2.2,
             label=r"原始目标：$\left|\partial/\partial s\right| = D(G(z))$")
    ax2.plot(dd, 1 - dd, color=c_ns, lw=2.2,
             label=r"非饱和目标：$\left|\partial/\partial s\right| = 1-D(G(z))$")
    ax2.axvspan(0, 0.1, color="#fee0d2", alpha=0.6, lw=0)
    p = 0.02
    ax2.plot([p, p], [p, 1 - p], "o", color="black", ms=4)
    ax2.annotate(f"$D(G(z)) = {p}$：\n梯度只有 {p}", (p, p), xytext=(0.08, 0.36), va="bottom",
                 fontsize=10.5, arrowprops=dict(arrowstyle="->", lw=0.8))
    ax2.annotate(f"同一处：梯度为 {1 - p:.2f}", (p, 1 - p), xytext=(0.2, 0.86),
                 fontsize=10.5, arrowprops=dict(arrowstyle="->", lw=0.8))
    ax2.set_xlim(0, 1)
    ax2.set_ylim(0, 1.05)
    ax2.set_xlabel(r"判别器对假样本的输出 $D(G(z))$", fontsize=10.5)
    ax2.set_ylabel("损失对 logit 的梯度大小", fontsize=10.5)
    ax2.set_title("传回生成器的梯度大小")
    ax2.grid(alpha=0.3)
    ax2.legend(loc="lower center", bbox_to_anchor=(0.5, 0.0), frameon=False, fontsize=10.5)
    for a in (ax1, ax2):
        a.tick_params(labelsize=10.5)
    fig.tight_layout()
    return fig


FIGURES = {
    "gan_zoo_cumulative": fig_gan_zoo_cumulative,
    "gan_dataflow": gan_diagrams.dataflow,
    "gan_backward": gan_diagrams.backward,
    "cgan_structure": gan_diagrams.cgan_structure,
    "gradient_saturation": fig_gradient_saturation,
    "dcgan_transposed_conv": dcgan_figures.transposed_conv,
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--from-tsv", nargs="?", const="", default=None, metavar="TSV",
                        help="re-derive images/gan_zoo_monthly.csv from the-gan-zoo TSV "
                             "(default: ../shared/data/gan-zoo.tsv beside the repository)")
    parser.add_argument("--only", nargs="+", choices=sorted(FIGURES), metavar="NAME",
                        help=f"draw only these figures ({', '.join(FIGURES)})")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder (images/out)")
    args = parser.parse_args(argv)

    # A missing CJK glyph would print a warning into the built book: fail here instead.
    warnings.filterwarnings("error", message=".*[Gg]lyph.*missing")
    use_chinese_font()
    try:
        if args.from_tsv is not None:
            tsv = find_tsv(args.from_tsv)
            rows = monthly_counts_from_tsv(tsv)
            written = write_atomic(CSV_PATH, csv_bytes(rows))
            print(f"{'wrote' if written else 'unchanged'} {CSV_PATH.relative_to(REPO)} from {tsv}: "
                  f"{len(rows)} months, "
                  f"{rows[-1][3]} papers")
        args.out.mkdir(parents=True, exist_ok=True)
        for name in args.only or FIGURES:
            fig = FIGURES[name]()
            px, text = smallest_label_px(fig, shown_fraction(name))
            if px < MIN_LABEL_PX:
                print(f"make_figures.py: warning: {name}: the label {text!r} is {px:.1f} px high on "
                      f"the page (at least {MIN_LABEL_PX} px wanted); enlarge it", file=sys.stderr)
            save_figure(fig, args.out / f"{name}.png")
    except FigureError as e:
        print(f"make_figures.py: error: {e}", file=sys.stderr)
        return 2
    except UserWarning as e:
        print(f"make_figures.py: error: {e}; install Debian's fonts-noto-cjk and delete "
              "~/.cache/matplotlib (or avoid that character)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
