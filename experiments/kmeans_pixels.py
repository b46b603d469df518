"""How far do pixel distances alone go towards the ten digits? k-means with 10
clusters on the 60,000 training images (no labels), then the same one-to-one
matching of clusters to digits as c1's matched accuracy (npgan.codes.assignment).
A yardstick for 21.3: c1 is also a partition into 10 groups found without labels.

    OPENBLAS_NUM_THREADS=1 python experiments/kmeans_pixels.py   # → kmeans_pixels.csv

Lloyd's algorithm from k-means++ starts, one row per seed; the run with the
lowest inertia (sum of squared distances) is the one k-means itself would pick.
"""

import csv
import datetime
import io
import platform
from pathlib import Path

import numpy as np

from npgan import load_mnist
from npgan.codes import assignment
from npgan.files import atomic_write

OUT = Path(__file__).with_name("kmeans_pixels.csv")
K = 10


def kmeans(x, k, rng, max_iter=300):
    """Cluster of each row of x and the inertia, from k-means++ starting centres."""
    sq_norms = (x * x).sum(axis=1)
    centres = [x[rng.integers(len(x))]]
    nearest = ((x - centres[0]) ** 2).sum(axis=1)
    for _ in range(k - 1):   # k-means++: far points are likelier starts
        centres.append(x[rng.choice(len(x), p=nearest / nearest.sum())])
        nearest = np.minimum(nearest, ((x - centres[-1]) ** 2).sum(axis=1))
    centres = np.array(centres)
    cluster = None
    for _ in range(max_iter):
        dist = sq_norms[:, None] - 2 * x @ centres.T + (centres * centres).sum(axis=1)
        new = dist.argmin(axis=1)
        if cluster is not None and np.array_equal(new, cluster):
            break
        cluster = new
        centres = np.array([x[cluster == j].mean(axis=0) for j in range(k)])
    return cluster, float(np.maximum(dist[np.arange(len(x)), cluster], 0).sum())


def main(seeds=range(5)):
    images, labels = load_mnist("train")      # the labels only score the clusters
    x = images.astype(np.float64)
    rows = []
    for seed in seeds:
        cluster, inertia = kmeans(x, K, np.random.default_rng(seed))
        counts = np.zeros((K, K), dtype=int)
        np.add.at(counts, (cluster, labels), 1)
        digit = assignment(counts)
        rows.append({"seed": seed, "inertia": f"{inertia:.1f}",
                     "matched_accuracy": f"{counts[np.arange(K), digit].sum() / len(x):.4f}"})
        print(rows[-1], flush=True)
    text = io.StringIO()
    text.write(f"# kmeans_pixels.py, {datetime.date.today()}, {platform.node()}; k = {K}, "
               f"{len(x):,} training images in [-1, 1], k-means++ starts\n")
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(OUT, "w", encoding="utf-8") as f:
        f.write(text.getvalue())
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
