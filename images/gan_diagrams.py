"""The chapter's three structure diagrams, drawn with matplotlib patches.

dataflow()        x ~ p_data and z ~ p_z → G(z) = x̃ → D → probability of "real"
backward()        what the D step and the G step back-propagate through and update
cgan_structure()  G(z, c) and D(x, c) with the one-hot condition c concatenated
Each function returns a matplotlib figure; make_figures.py saves it. The figures are
drawn at the size the page shows them (its text column, :width: 100%), so that a font
size here is close to what the reader sees: the smallest label is 11 pt, which is about
12 px on the page (tests/test_figure_labels.py checks every label).
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Polygon, Rectangle

# colours: generator green, discriminator orange, data blue, noise grey, gradient red
G_EDGE, G_FILL, G_PALE = "#238b45", "#a1d99b", "#edf8e9"
D_EDGE, D_FILL, D_PALE = "#d94801", "#fdae6b", "#fff5eb"
DATA_EDGE, DATA_FILL = "#2171b5", "#deebf7"
NOISE_EDGE, NOISE_FILL = "#525252", "#f0f0f0"
GRAD = "#cb181d"


def _canvas(width, height, figsize):
    fig, ax = plt.subplots(figsize=figsize)
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def box(ax, x, y, w, h, text, edge, fill, fontsize=12, dashed=False, lw=1.6, **kw):
    """A rounded box centred at (x, y) with centred text."""
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                                boxstyle="round,pad=0.02,rounding_size=0.12",
                                ec=edge, fc=fill, lw=lw, ls="--" if dashed else "-"))
    if text:
        ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, linespacing=1.35, **kw)


def trapezoid(ax, x, y, w, h_left, h_right, text, edge, fill, fontsize=13):
    """A network drawn as a trapezoid: its height says how wide its layers are."""
    pts = [(x - w / 2, y - h_left / 2), (x + w / 2, y - h_right / 2),
           (x + w / 2, y + h_right / 2), (x - w / 2, y + h_left / 2)]
    ax.add_patch(Polygon(pts, closed=True, ec=edge, fc=fill, lw=2))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, linespacing=1.3)


def arrow(ax, start, end, color="black", lw=1.6, style="-|>", rad=0.0, ls="-", mutation=16):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=mutation,
                                 color=color, lw=lw, ls=ls,
                                 connectionstyle=f"arc3,rad={rad}", shrinkA=0, shrinkB=0))


# ---------------------------------------------------------------- data flow

def dataflow():
    fig, ax = _canvas(13.6, 5.0, (8.6, 3.16))
    # inputs
    box(ax, 1.45, 4.2, 2.6, 1.25, "真实数据\n$x \\sim p_{\\mathrm{data}}(x)$",
        DATA_EDGE, DATA_FILL)
    box(ax, 1.45, 1.2, 2.6, 1.25, "随机噪声\n$z \\sim p_z(z)$", NOISE_EDGE, NOISE_FILL)
    # generator and its output
    trapezoid(ax, 4.25, 1.2, 1.9, 0.9, 1.8, "生成器\nG", G_EDGE, G_FILL)
    box(ax, 6.85, 1.2, 2.1, 1.25, "假样本\n$\\tilde{x} = G(z)$", G_EDGE, G_PALE)
    # discriminator and its output
    trapezoid(ax, 9.65, 2.45, 1.9, 2.5, 0.9, "判别器\nD", D_EDGE, D_FILL)
    box(ax, 12.15, 2.45, 2.7, 1.6, "$D(\\cdot) \\in (0, 1)$\n判为“真”的概率",
        D_EDGE, D_PALE)
    ax.text(12.15, 1.45, "接近 1：判为真\n接近 0：判为假", ha="center", va="top",
            fontsize=11, color="#444444")

    arrow(ax, (2.7, 1.2), (3.3, 1.2))
    arrow(ax, (5.2, 1.2), (5.85, 1.2))
    arrow(ax, (2.7, 4.2), (8.7, 3.2), color=DATA_EDGE, rad=-0.12)
    arrow(ax, (7.85, 1.2), (8.7, 1.65), color=G_EDGE, rad=0.15)
    arrow(ax, (10.6, 2.45), (10.95, 2.45))
    ax.text(5.4, 4.3, "真样本（标签 1）", ha="center", fontsize=11, color=DATA_EDGE)
    ax.text(7.95, 0.45, "假样本（标签 0）", ha="left", va="top", fontsize=11, color=G_EDGE)
    ax.text(4.25, -0.05, "G 想让 D 把 $\\tilde{x}$ 判为真", ha="center", fontsize=11,
            color=G_EDGE)
    ax.text(9.65, 3.95, "D 想分清真与假", ha="center", fontsize=11, color=D_EDGE)
    fig.tight_layout(pad=0.2)
    return fig


# ---------------------------------------------------------------- backward pass

G_LAYERS = [("G1", "100→256", "ReLU"), ("G2", "256→512", "ReLU"), ("G3", "512→784", "tanh")]
D_LAYERS = [("D1", "784→512", "ReLU"), ("D2", "512→256", "ReLU"), ("D3", "256→1", "sigmoid")]
LAYER_W, LAYER_H = 1.28, 2.0
G_X = [1.95, 3.37, 4.79]
D_X = [7.9, 9.32, 10.74]
X_FAKE, X_LOSS = 6.35, 12.55
SMALL = 11.5          # the smallest type of this figure (12 px at the page's width)


def _layer(ax, x, y, spec, edge, fill, pale, state):
    """state: 'update' (filled, solid), 'pass' (gradient crosses, weights frozen),
    'idle' (only the forward pass runs)."""
    name, shape, act = spec
    face = {"update": fill, "pass": "white", "idle": pale}[state]
    ax.add_patch(FancyBboxPatch((x - LAYER_W / 2, y - LAYER_H / 2), LAYER_W, LAYER_H,
                                boxstyle="round,pad=0.02,rounding_size=0.1",
                                ec=edge if state != "idle" else "#9e9e9e", fc=face,
                                lw=2.4 if state == "update" else 1.4,
                                ls="-" if state == "update" else "--"))
    color = "black" if state != "idle" else "#7a7a7a"
    ax.text(x, y + 0.5, name, ha="center", va="center", fontsize=13, weight="bold",
            color=color)
    ax.text(x, y - 0.12, shape, ha="center", va="center", fontsize=SMALL, color=color)
    ax.text(x, y - 0.6, act, ha="center", va="center", fontsize=SMALL, color=color)
    tag = {"update": "更新", "pass": "不更新", "idle": "不参与"}[state]
    ax.text(x, y - LAYER_H / 2 - 0.32, tag, ha="center", va="center", fontsize=SMALL,
            color=edge if state == "update" else "#555555",
            weight="bold" if state == "update" else "normal")


def _numbered(ax, x, y, n):
    ax.add_patch(Circle((x, y), 0.25, fc="white", ec=GRAD, lw=1.3))
    ax.text(x, y - 0.01, str(n), ha="center", va="center", fontsize=SMALL, color=GRAD,
            weight="bold")


def _backward_panel(ax, y, g_step):
    top = y + LAYER_H / 2
    g_state = "update" if g_step else "idle"
    d_state = "pass" if g_step else "update"
    box(ax, 0.6, y, 0.9, 0.9, "$z$", NOISE_EDGE, NOISE_FILL, fontsize=14)
    for x, spec in zip(G_X, G_LAYERS):
        _layer(ax, x, y, spec, G_EDGE, G_FILL, G_PALE, g_state)
    for x, spec in zip(D_X, D_LAYERS):
        _layer(ax, x, y, spec, D_EDGE, D_FILL, D_PALE, d_state)
    # forward arrows, from the right edge of each block to the left edge of the next
    half = {"z": 0.45, "fake": 0.5}
    blocks = [(0.6, half["z"])] + [(x, LAYER_W / 2) for x in G_X] + [(X_FAKE, half["fake"])] \
        + [(x, LAYER_W / 2) for x in D_X] + [(X_LOSS, 0.95)]
    for (a, ha), (b, hb) in zip(blocks[:-1], blocks[1:]):
        arrow(ax, (a + ha, y), (b - hb, y), mutation=10 if b - hb - a - ha < 0.3 else 13)

    if g_step:
        box(ax, X_FAKE, y, 1.0, 0.9, "$\\tilde{x}$", G_EDGE, G_PALE, fontsize=14)
        box(ax, X_LOSS, y, 1.9, 1.6, "BCE 损失\n假样本的标签\n记为 1", GRAD, "#fff0f0",
            fontsize=SMALL)
        crossed = list(reversed(G_X + D_X))
        x_end = G_X[0] - 0.3
    else:
        box(ax, X_FAKE, y - 0.5, 1.0, 0.75, "$\\tilde{x}$", G_EDGE, G_PALE, fontsize=13)
        box(ax, X_FAKE, y + 0.5, 1.0, 0.75, "$x$", DATA_EDGE, DATA_FILL, fontsize=13)
        ax.text(X_FAKE, y - 1.0, "真、假各一批\n$\\tilde{x}$ 当作常数", ha="center",
                va="top", fontsize=SMALL, color="#444444", linespacing=1.45)
        box(ax, X_LOSS, y, 1.9, 1.6, "BCE 损失\n真→1，假→0", GRAD, "#fff0f0", fontsize=SMALL)
        crossed = list(reversed(D_X))
        x_end = D_X[0] - 0.3

    # the gradient: one red arrow from the loss back over every layer it crosses
    y_grad = top + 0.55
    arrow(ax, (X_LOSS, y + 0.8), (X_LOSS, y_grad), color=GRAD, style="-", lw=2)
    arrow(ax, (X_LOSS, y_grad), (x_end, y_grad), color=GRAD, lw=2.2, mutation=18)
    for n, x in enumerate(crossed, start=1):
        _numbered(ax, x, y_grad, n)


def backward():
    fig, ax = _canvas(13.6, 10.2, (9.0, 6.75))
    y_d, y_g = 7.55, 3.0
    _backward_panel(ax, y_d, g_step=False)
    _backward_panel(ax, y_g, g_step=True)
    ax.text(0.1, 9.9, "（a）判别器这一步：梯度只经过 D 的 3 层，只更新 D",
            fontsize=13, weight="bold", va="center")
    ax.text(0.1, 5.3, "（b）生成器这一步：梯度依次穿过 6 层（D3→D1，再 G3→G1），只更新 G 的 3 层",
            fontsize=13, weight="bold", va="center")
    ax.plot([0.1, 13.5], [5.75, 5.75], color="#bdbdbd", lw=1)
    # legend, two lines
    y = 0.9
    arrow(ax, (0.2, y), (1.0, y))
    ax.text(1.15, y, "前向计算", va="center", fontsize=SMALL)
    arrow(ax, (3.5, y), (2.7, y), color=GRAD, lw=2.2)
    ax.text(3.65, y, "反向传播的梯度（圈中数字 = 经过的次序）", va="center", fontsize=SMALL)
    y = 0.3
    for x0, state, label in ((0.4, "update", "实线填色：这一步更新参数"),
                             (5.2, "pass", "虚线空心：传梯度但参数不动")):
        ax.add_patch(Rectangle((x0, y - 0.2), 0.4, 0.4, ec="#444444",
                               fc="#bdbdbd" if state == "update" else "white",
                               lw=2 if state == "update" else 1.2,
                               ls="-" if state == "update" else "--"))
        ax.text(x0 + 0.55, y, label, va="center", fontsize=SMALL)
    fig.tight_layout(pad=0.2)
    return fig


# ---------------------------------------------------------------- CGAN

ON = "#6a51a3"      # the one-hot condition's "1"


def _vector(ax, x, y_top, colors, cell, width=0.42, edge="#444444"):
    """A column vector, one cell per colour, from y_top downwards; returns its bottom y."""
    for i, c in enumerate(colors):
        ax.add_patch(Rectangle((x - width / 2, y_top - (i + 1) * cell), width, cell,
                               fc=c, ec=edge, lw=0.8))
    return y_top - len(colors) * cell


def _cgan_row(ax, y_top, rng, generator, digit=3):
    """One network of the CGAN: its input vector stacked over c, the concatenation,
    the network and its output. y_top is the top of the input vectors."""
    cell, gap, x_in, x_cat = 0.2, 0.45, 2.15, 4.35
    if generator:
        first = [plt.cm.Greys(v) for v in rng.uniform(0.15, 0.75, 9)]
        first_label, first_edge = "噪声 $z$\n100 维", NOISE_EDGE
        net_label, net_edge, net_fill = "生成器 G\n110→256→512→784", G_EDGE, G_FILL
        cat_label = "拼接 $[z, c]$\n110 维"
        out_text, out_fill = "假样本\n$\\tilde{x} = G(z\\,|\\,c)$\n784 维（28×28）", G_PALE
    else:
        first = [plt.cm.Blues(v) for v in rng.uniform(0.2, 0.8, 9)]
        first_label, first_edge = "图像 $x$ 或 $\\tilde{x}$\n784 维", DATA_EDGE
        net_label, net_edge, net_fill = "判别器 D\n794→512→256→1", D_EDGE, D_FILL
        cat_label = "拼接 $[x, c]$\n794 维"
        out_text, out_fill = "$D(x\\,|\\,c)$\n真实且与 $c$ 相符\n的概率", D_PALE
    c_colors = [ON if i == digit else "white" for i in range(10)]

    # the two inputs, one above the other (the dots: the vector is longer than drawn)
    z_bottom = _vector(ax, x_in, y_top, first, cell)
    ax.text(x_in, z_bottom + 0.02, "$\\vdots$", ha="center", va="top", fontsize=11)
    c_top = z_bottom - gap
    c_bottom = _vector(ax, x_in, c_top, c_colors, cell)
    ax.text(x_in - 0.35, (y_top + z_bottom) / 2, first_label, ha="right", va="center",
            fontsize=11.5, linespacing=1.3)
    ax.text(x_in - 0.35, (c_top + c_bottom) / 2, "条件 $c$\n10 维独热", ha="right",
            va="center", fontsize=11.5, linespacing=1.3)
    ax.text(x_in + 0.3, c_top - (digit + 0.5) * cell, f"← 数字 {digit} 对应\n    的一位为 1",
            ha="left", va="center", fontsize=10.5, color=ON, linespacing=1.3)

    # the concatenation: the same cells, end to end
    cat_top = y_top - gap / 2
    mid = _vector(ax, x_cat, cat_top, first, cell)
    cat_bottom = _vector(ax, x_cat, mid, c_colors, cell)
    ax.text(x_cat, cat_top + 0.12, cat_label, ha="center", va="bottom", fontsize=11.5,
            linespacing=1.3)
    arrow(ax, (x_in + 0.3, (y_top + z_bottom) / 2), (x_cat - 0.3, (cat_top + mid) / 2),
          color=first_edge)
    arrow(ax, (x_in + 1.6, (c_top + c_bottom) / 2), (x_cat - 0.3, (mid + cat_bottom) / 2),
          color=ON)

    # the network and its output
    y = (cat_top + cat_bottom) / 2
    h_in, h_out = (1.2, 2.6) if generator else (2.6, 1.2)
    trapezoid(ax, 6.9, y, 2.6, h_in, h_out, net_label, net_edge, net_fill, fontsize=12)
    arrow(ax, (x_cat + 0.3, y), (5.6, y))
    arrow(ax, (8.2, y), (8.85, y))
    box(ax, 10.25, y, 2.7, 1.75, out_text, net_edge, out_fill, fontsize=11.5)
    return c_bottom


def cgan_structure():
    fig, ax = _canvas(11.7, 11.3, (8.2, 7.92))
    rng = np.random.default_rng(21)
    ax.text(0.1, 11.0, "（a）条件生成器 $G(z\\,|\\,c)$：噪声与条件拼接后送入 G",
            fontsize=13, weight="bold", va="center")
    bottom = _cgan_row(ax, 10.1, rng, generator=True)
    ax.text(10.25, 10.1 - 2.1 + 1.25, "想要哪个数字，\n就把哪一位设为 1", ha="center",
            va="bottom", fontsize=10.5, color=ON, linespacing=1.3)
    y_line = bottom - 0.3
    ax.plot([0.1, 11.6], [y_line, y_line], color="#bdbdbd", lw=1)
    ax.text(0.1, y_line - 0.4, "（b）条件判别器 $D(x\\,|\\,c)$：图像与同一个条件拼接后送入 D",
            fontsize=13, weight="bold", va="center")
    top = y_line - 1.25
    _cgan_row(ax, top, rng, generator=False)
    ax.text(10.25, top - 2.1 + 1.25, "真样本配它自己的标签，\n假样本配生成它时用的 $c$",
            ha="center", va="bottom", fontsize=10.5, color="#444444", linespacing=1.3)
    fig.tight_layout(pad=0.2)
    return fig
