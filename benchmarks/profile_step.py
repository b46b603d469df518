"""Where the time of one npgan training step goes, beyond the matrix multiplies
(issue #13). One BLAS thread, the book's GAN and CGAN, batch 64, real MNIST.

Each part of ``train_step`` is timed by wrapping the functions that do it
(exclusive time: a Linear layer's time is without its matrix products, which
are timed apart through a wrapped ``np.matmul`` in layers.py):

    matmul            all of the step's matrix products (np.matmul in Linear)
    Linear rest       bias add (forward), dL/db = row sums (backward)
    LeakyReLU, Tanh   the activations, forward and backward
    dropout mask      the random bits and the mask (forward); dropout backward
    BCE               losses.bce_with_logits (D step and G step)
    Adam              optim.Adam.step for D and G (ten whole-vector passes each)
    noise z           GAN.sample_noise
    EMA of G          GAN.after_g_step (the average of G's weights, if any)
    train_step glue   the rest: copies into D's input, targets, D(x) means, Python

Beside it: the same step at batch 1 (what each part costs when there is
almost no data: Python calls and NumPy's per-call dispatch), the matmul
floor (the step's products replayed alone on the same arrays), and the
memory rate of one streaming pass (x += y) over vectors of Adam's size.

    python benchmarks/profile_step.py [--rounds 7] [--steps 30]
"""

import argparse
import statistics
import sys
import time
import types
from collections import defaultdict
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import npgan
from npgan import gan, layers, optim

PARTS = [  # (owner, attribute, part)
    (layers.Linear, "forward", "Linear rest"), (layers.Linear, "backward", "Linear rest"),
    (layers.LeakyReLU, "forward", "LeakyReLU"), (layers.LeakyReLU, "backward", "LeakyReLU"),
    (layers.Tanh, "forward", "Tanh"), (layers.Tanh, "backward", "Tanh"),
    (layers.Dropout, "forward", "dropout mask"), (layers.Dropout, "backward", "dropout backward"),
    (gan, "bce_with_logits", "BCE"),
    (optim.Adam, "step", "Adam"),
    (gan.GAN, "sample_noise", "noise z"),
    (gan.GAN, "after_g_step", "EMA of G"),
    (gan.GAN, "train_step", "train_step glue"),
]


class Profiler:
    """Exclusive seconds and calls per part, accumulated until ``reset``."""

    def __init__(self):
        self.seconds, self.calls = defaultdict(float), defaultdict(int)
        self.stack = []            # time spent in wrapped callees of each open call
        self.products = None       # a list to record (a, b, out) of every matmul into

    def reset(self):
        self.seconds.clear()
        self.calls.clear()

    def wrap(self, part, fn):
        def timed(*args, **kwargs):
            self.stack.append(0.0)
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                self.seconds[part] += dt - self.stack.pop()
                self.calls[part] += 1
                if self.stack:
                    self.stack[-1] += dt
        return timed

    def install(self):
        """Wrap PARTS, and np.matmul as layers.py sees it. Returns an undo function."""
        saved = [(owner, name, getattr(owner, name)) for owner, name, _ in PARTS]
        for owner, name, part in PARTS:
            setattr(owner, name, self.wrap(part, getattr(owner, name)))
        timed_matmul = self.wrap("matmul", np.matmul)

        def matmul(a, b, out=None):
            if self.products is not None:
                self.products.append((a, b, out))
            return timed_matmul(a, b, out=out)
        fake_np = types.ModuleType("numpy_with_timed_matmul")
        fake_np.__dict__.update(np.__dict__)
        fake_np.matmul = matmul
        layers.np = fake_np

        def undo():
            layers.np = np
            for owner, name, fn in saved:
                setattr(owner, name, fn)
        return undo


def batches_of(model, size, count=16):
    images, labels = npgan.load_mnist("train", subset=4096)
    rng = np.random.default_rng(0)
    picks = [rng.integers(0, len(images), size) for _ in range(count)]
    cond = npgan.book_config(model).n_classes > 0
    return [(images[i], labels[i] if cond else None) for i in picks]


def per_step(net, batches, steps):
    net.train_step(*batches[0])
    t0 = time.perf_counter()
    for i in range(steps):
        net.train_step(*batches[i % len(batches)])
    return (time.perf_counter() - t0) / steps


def profile(model, batch, rounds, steps):
    """(plain ms/step, instrumented ms/step, {part: ms/step}, {part: calls/step}, products)."""
    net = npgan.build(npgan.book_config(model), seed=0)
    batches = batches_of(model, batch)
    for b in batches[:3]:
        net.train_step(*b)
    plain, wrapped, parts = [], [], defaultdict(list)
    prof = Profiler()
    for _ in range(rounds):
        plain.append(per_step(net, batches, steps))
        undo = prof.install()
        try:
            net.train_step(*batches[0])
            prof.reset()
            wrapped.append(per_step(net, batches, steps))
            calls = {p: c / (steps + 1) for p, c in prof.calls.items()}
            for part, s in prof.seconds.items():
                parts[part].append(s / (steps + 1))
            prof.products = []
            net.train_step(*batches[0])
            products, prof.products = prof.products, None
        finally:
            undo()
    ms = {p: statistics.median(v) * 1e3 for p, v in parts.items()}
    return (statistics.median(plain) * 1e3, statistics.median(wrapped) * 1e3, ms, calls,
            products)


def matmul_floor(products, rounds, steps):
    """ms per step of the recorded products alone, and their GFLOP per step."""
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(steps):
            for a, b, out in products:
                np.matmul(a, b, out=out)
        times.append((time.perf_counter() - t0) / steps)
    flop = sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b, _ in products)
    return statistics.median(times) * 1e3, flop / 1e9


def stream_rate(n, repeats=200):
    """GB/s of x += y over float32 vectors of n elements (8 bytes read, 4 written)."""
    x, y = np.ones(n, np.float32), np.ones(n, np.float32)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(repeats):
            x += y
        best = min(best, (time.perf_counter() - t0) / repeats)
    return 12 * n / best / 1e9, best


def adam_passes(n, repeats=200):
    """µs of each of Adam.step's ten passes over float32 vectors of n elements, the
    way optim.Adam does them (same operations, same order), and how many bytes each moves."""
    g, M, V, s, theta = (np.full(n, 0.5, np.float32) for _ in range(5))
    passes = [  # (what, function, float32 reads + writes per element)
        ("M *= b1", lambda: M.__imul__(0.5), 2), ("M += g", lambda: M.__iadd__(g), 3),
        ("s = g*g", lambda: np.multiply(g, g, out=s), 2), ("V *= b2", lambda: V.__imul__(0.999), 2),
        ("V += s", lambda: V.__iadd__(s), 3), ("s = V*c", lambda: np.multiply(V, 3.0, out=s), 2),
        ("sqrt(s)", lambda: np.sqrt(s, out=s), 2), ("s += eps·k", lambda: s.__iadd__(1e-3), 2),
        ("s = M/s", lambda: np.divide(M, s, out=s), 3), ("θ -= s", lambda: theta.__isub__(s), 3),
    ]
    rows = []
    for what, fn, accesses in passes:
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(repeats):
                fn()
            best = min(best, (time.perf_counter() - t0) / repeats)
        rows.append((what, best * 1e6, accesses * 4 * n / best / 1e9))
        M[...], V[...], s[...] = 0.5, 0.5, 0.5    # keep the values tame
    return rows


def rng_rate(nbytes, repeats=200):
    """GB/s of Generator.bytes, which draws dropout's random bits."""
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(repeats):
        rng.bytes(nbytes)
    return nbytes / ((time.perf_counter() - t0) / repeats) / 1e9


def call_overhead(repeats=20000):
    """µs of one in-place NumPy ufunc call on a 1-element array (the dispatch floor)."""
    x = np.ones(1, np.float32)
    t0 = time.perf_counter()
    for _ in range(repeats):
        np.multiply(x, 0.5, out=x)
    return (time.perf_counter() - t0) / repeats * 1e6


ORDER = ["matmul", "Linear rest", "LeakyReLU", "Tanh", "dropout mask", "dropout backward",
         "BCE", "Adam", "noise z", "EMA of G", "train_step glue"]


def report(model, rounds, steps):
    plain, wrapped, ms, calls, products = profile(model, 64, rounds, steps)
    _, _, ms1, _, _ = profile(model, 1, rounds, steps)
    floor, gflop = matmul_floor(products, rounds, steps)
    net = npgan.build(npgan.book_config(model), seed=0)
    n_params = net.G.flat_params.size + net.D.flat_params.size
    print(f"\n{model.upper()} step, batch 64, 1 BLAS thread: {plain:.2f} ms uninstrumented, "
          f"{wrapped:.2f} ms with the timers ({wrapped - plain:+.2f} ms of timer overhead)")
    print(f"{'part':18s} {'calls':>6s} {'ms/step':>8s} {'share':>6s} {'at batch 1':>10s}")
    total = sum(ms.values())
    for part in ORDER:
        if part in ms:
            print(f"{part:18s} {calls.get(part, 0):6.0f} {ms[part]:8.3f} {ms[part] / total:6.1%} "
                  f"{ms1.get(part, 0):10.3f}")
    rest = total - ms["matmul"]
    print(f"{'all but matmul':18s} {'':6s} {rest:8.3f} {rest / total:6.1%} "
          f"{sum(ms1.values()) - ms1['matmul']:10.3f}")
    print(f"matmul floor: {len(products)} products replayed alone {floor:.3f} ms "
          f"({gflop * 1e3:.1f} MFLOP, {gflop / floor * 1e3:.1f} GFLOP/s); "
          f"step / floor = {plain / floor:.2f}")
    adam_bytes = 24 * 4 * n_params        # 14 reads + 10 writes of a float32 per parameter
    print(f"Adam: {n_params:,} parameters, {adam_bytes / 1e6:.0f} MB moved per step → "
          f"{adam_bytes / ms['Adam'] / 1e6:.1f} GB/s")
    return {"plain": plain, "ms": ms, "ms1": ms1, "floor": floor, "n_params": n_params}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--model", nargs="+", default=["gan", "cgan"])
    args = p.parse_args(argv)
    with threadpool_limits(limits=1, user_api="blas"):
        for model in args.model:
            report(model, args.rounds, args.steps)
        net = npgan.build(npgan.book_config("gan"), seed=0)
        for name, n in (("G", net.G.flat_params.size), ("D", net.D.flat_params.size)):
            rate, seconds = stream_rate(n)
            print(f"x += y over {name}'s {n:,} float32: {rate:.1f} GB/s "
                  f"({seconds * 1e3:.3f} ms per pass)")
        rows = adam_passes(net.G.flat_params.size)
        print(f"Adam's passes over G's vector: " + ", ".join(
            f"{what} {us:.0f} µs ({rate:.0f} GB/s)" for what, us, rate in rows)
            + f"; all ten {sum(r[1] for r in rows):.0f} µs")
        drawn = 2 * (128 + 64) * sum(net.config.d_hidden)     # 16-bit draws per GAN step
        print(f"dropout's random bits: {drawn / 1e3:.0f} kB per GAN step; Generator.bytes "
              f"makes {rng_rate(drawn):.2f} GB/s")
        rate, seconds = stream_rate(128 * 512)
        print(f"x += y over one activation 128×512: {rate:.1f} GB/s ({seconds * 1e6:.1f} µs)")
        print(f"one NumPy ufunc call on 1 element: {call_overhead():.2f} µs")


if __name__ == "__main__":
    sys.exit(main())
