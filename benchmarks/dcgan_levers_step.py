"""What one training step of the DCGAN costs with each lever of experiments/dcgan_levers.py,
and with the wider choices for G's 7×7 maps that the board did not train, timed
round-robin in one run (one BLAS thread, batch 64; batch 128 is timed per image).
Why the board's G has 128 maps out of its Linear, not TensorFlow's 256. The figures go
to benchmarks/dcgan_levers_step.csv (the appendix's notebook appendix-a3-dcgan-levers
reads it) and to the terminal:

    .venv/bin/python benchmarks/dcgan_levers_step.py
"""

import csv
import io
import json
import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

from bench_train import Contender, time_round_robin   # benchmarks/ is this script's folder
from npgan import book_config, build
from npgan.files import atomic_write
from npgan.threads import blas_threads

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
from dcgan_levers import LEVERS   # noqa: E402  (the board's levers, by name)

OUT = Path(__file__).with_name("dcgan_levers_step.csv")
MORE = {"G 64 channels at 7x7 + stride-1 3x3 conv": {"g_linear_channels": 64},
        "G 256 channels at 7x7 + stride-1 3x3 conv": {"g_linear_channels": 256},
        "G 256 channels at 7x7 + stride-1 3x3 conv to 64": {"g_linear_channels": 256,
                                                            "g_channels": (64, 16)}}


def main(rounds=5, steps=5):
    book = book_config("dcgan")
    configs = {name: replace(book, **changes) for name, changes in {**LEVERS, **MORE}.items()}
    rng = np.random.default_rng(0)
    contenders = []
    for name, cfg in configs.items():
        x = rng.uniform(-1, 1, (cfg.batch_size, 784)).astype(np.float32)
        contenders.append(Contender(name, "dcgan", name, 0.0, partial(build(cfg, seed=0).train_step, x),
                                    batch_size=cfg.batch_size))
    times = time_round_robin(contenders, rounds, steps, budget=float("inf"), warmup=1)
    per_image = {name: float(np.median(t)) / configs[name].batch_size for name, t in times.items()}
    base = per_image["book recipe"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("lever", "changes", "ms_per_64_images", "vs_recipe", "weights", "date"))
    for name, t in per_image.items():
        print(f"{name}: {t * 64 * 1000:.1f} ms per 64 images, {t * 50_000:.0f} s per epoch of "
              f"50,000, {t / base:.2f}× the recipe; {configs[name].num_parameters():,} weights")
        writer.writerow((name, json.dumps({**LEVERS, **MORE}[name]), f"{t * 64 * 1000:.1f}", f"{t / base:.3f}",
                         configs[name].num_parameters(), time.strftime("%Y-%m-%d")))
    with atomic_write(OUT, "w", encoding="utf-8") as f:
        f.write(buf.getvalue())


if __name__ == "__main__":
    with blas_threads(1):
        main()
