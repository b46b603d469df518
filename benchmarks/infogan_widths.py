"""How much a training step of InfoGAN costs at three sizes, timed round-robin in one run:
the book's MLP recipe; the conv nets at the book DCGAN's widths (21.4); and conv nets
as wide as Chen et al.'s on MNIST (G 128/64 channels, D 64/128 channels and a hidden
Linear of 1024, Q's own hidden layer of 128; their G's extra FC 1024 is left out, so
this is a lower bound). Why the book does not train the paper's networks (21.3.7):

    .venv/bin/python benchmarks/infogan_widths.py
"""

from dataclasses import replace
from functools import partial

import numpy as np

from bench_train import Contender, time_round_robin   # benchmarks/ is this script's folder
from npgan import book_config, build
from npgan.threads import blas_threads

STEPS_PER_EPOCH = 60_000 // 64


def main(rounds=5, steps=3):
    x = np.random.default_rng(0).uniform(-1, 1, (64, 784)).astype(np.float32)
    book = book_config("infogan")
    configs = {
        "book (MLP)": book,
        "conv, the book DCGAN's widths": replace(book, arch="conv", g_channels=(32, 16),
                                                 d_channels=(16, 32, 64), d_batch_norm=False),
        "conv, the paper's widths": replace(book, arch="conv", g_channels=(128, 64),
                                            d_channels=(64, 128), d_fc=(1024,), d_dropout=0.0,
                                            q_hidden=128, lr_d=2e-4, lr_g=1e-3),
    }
    contenders = [Contender(name, "infogan", name, 0.0, partial(build(cfg, seed=0).train_step, x))
                  for name, cfg in configs.items()]
    times = time_round_robin(contenders, rounds, steps, budget=float("inf"), warmup=1)
    base = float(np.median(times["book (MLP)"]))
    for name, t in times.items():
        ms = float(np.median(t)) * 1000
        print(f"{name}: {ms:.1f} ms per step, {ms * STEPS_PER_EPOCH / 1000:.0f} s per epoch, "
              f"{ms / 1000 / base:.1f}× the book's step; {configs[name].num_parameters():,} weights")


if __name__ == "__main__":
    with blas_threads():   # as many BLAS threads as `npgan train` uses (one)
        main()
