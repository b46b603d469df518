"""Speed benchmark of npgan's training step (``make bench``).

What it measures, in one run:

1. Time per training step of the GAN and the CGAN (batch 64) for
     - npgan at the book's defaults (npgan.build(npgan.book_config(...)));
     - baseline_original.py: the float64 NumPy code "as a course would first write it";
     - torch_gan.py: the same step in PyTorch (CPU, as many threads as npgan), Adam and SGD;
     - the floor: only the step's 22 matrix products, with preallocated outputs.
   The DCGAN step (npgan.dcgan, book config, batch 64): npgan, its matrix
   products recorded from a real step and timed alone (dcgan_floor.py; the
   im2col copies, BatchNorm and Adam are what npgan adds on top), and the same
   step in PyTorch (torch_dcgan.py, Adam).
   Also npgan's GAN step at batch sizes 32, 64, 128 and 256.
   Threads: by default as many BLAS threads as ``npgan train`` uses (npgan.threads:
   one per training process, unless NPGAN_THREADS says otherwise), the same for
   PyTorch; ``make bench`` then repeats the timing with --threads 2.
   All contenders are timed round-robin, in short samples of --steps steps,
   repeated --repeats times, so that a burst of load from other users hits
   all of them alike; the figures reported are medians. Seconds per epoch =
   median step time × steps per epoch (60000 // batch size, e.g. 937).
2. Peak memory (RSS) of a real 1-epoch GAN and DCGAN training run on all 60,000 images,
   in a child process (``python -m npgan train ...``); --no-memory skips it.
3. Time to load MNIST from the cache (npgan.load_mnist() in a fresh process).

The figures are printed and written to benchmarks/results/latest.json.
"""

import argparse
import ctypes
import datetime
import itertools
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

import npgan
import npgan.threads
from npgan.files import atomic_write

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import baseline_original  # noqa: E402  (lives next to this file)

try:
    import torch
    import torch_dcgan
    import torch_gan
except (ImportError, OSError) as err:  # not installed, or its libraries do not load
    torch = torch_gan = torch_dcgan = None
    TORCH_MISSING = f"PyTorch not importable ({err}): the PyTorch rows are skipped"

N_TRAIN = 60_000
BATCH = 64
SWEEP_BATCHES = (32, 64, 128, 256)
TORCH_THREADS = 2
N_DISTINCT_BATCHES = 16   # real MNIST batches each contender cycles through
MIN_ROUNDS = 3            # timing rounds done even when the time budget is used up
LOAD_REPEATS = 3


def steps_per_epoch(batch_size):
    return N_TRAIN // batch_size   # the last incomplete batch is dropped, as in npgan.train


# ---------------------------------------------------------------- contenders

@dataclass
class Contender:
    """One thing to time: ``step()`` runs one training step on the next batch."""

    key: str            # e.g. "gan/npgan", used in the JSON file
    model: str          # "gan" or "cgan"
    name: str           # printed name
    flops: float        # floating-point operations of the matrix products of one step
    step: Callable
    batch_size: int = BATCH


def cycling(train_step, batches):
    """A zero-argument step function: train_step(*batch) on the next batch, cycling."""
    batches = itertools.cycle(batches)
    return lambda: train_step(*next(batches))


def floor_products(n_classes, batch_size=BATCH, latent_dim=100, dtype=np.float32):
    """The 22 matrix products of one npgan step as (a, b, out) triples, with
    preallocated outputs and the memory layout npgan's layers use (x^T and W^T
    are transposed views). Widths: G 100(+k) → 256 → 512 → 784, D 784(+k) → 512 → 256 → 1."""
    rng = np.random.default_rng(0)
    B = batch_size

    def data(*shape):
        return rng.standard_normal(shape, dtype=dtype)

    W_g = [data(latent_dim + n_classes, 256), data(256, 512), data(512, 784)]
    W_d = [data(784 + n_classes, 512), data(512, 256), data(256, 1)]
    products = []

    def product(a, b):
        products.append((a, b, np.empty((a.shape[0], b.shape[1]), dtype=dtype)))

    for W in W_g:                       # G forward on B rows: 3
        product(data(B, W.shape[0]), W)
    for W in W_d:                       # D forward on [real; fake], 2B rows: 3
        product(data(2 * B, W.shape[0]), W)
    for W in W_d:                       # D backward: dW = x^T g: 3
        product(data(2 * B, W.shape[0]).T, data(2 * B, W.shape[1]))
    for W in W_d[1:]:                   # ... dx = g W^T, not for the first layer: 2
        product(data(2 * B, W.shape[1]), W.T)
    for W in W_d:                       # G step: D forward on the B fakes: 3
        product(data(B, W.shape[0]), W)
    for W in W_d:                       # ... dx back through all of D: 3
        product(data(B, W.shape[1]), W.T)
    for W in W_g:                       # G backward: dW: 3
        product(data(B, W.shape[0]).T, data(B, W.shape[1]))
    for W in W_g[1:]:                   # ... dx, not for the first layer: 2
        product(data(B, W.shape[1]), W.T)
    assert len(products) == 22
    return products


def flop_count(products):
    """2·m·k·n operations per product (m×k)·(k×n)."""
    return sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b, _ in products)


def floor_step(products):
    def step():
        for a, b, out in products:
            np.matmul(a, b, out=out)
    return step


def real_batches(images, labels, batch_size, rng):
    """N_DISTINCT_BATCHES batches of real MNIST images (and their labels), drawn at random."""
    order = rng.permutation(len(images))[:N_DISTINCT_BATCHES * batch_size]
    return [(images[idx], labels[idx]) for idx in order.reshape(N_DISTINCT_BATCHES, batch_size)]


def make_contenders(images, labels):
    """Every (model, implementation) pair to time, plus the batch-size sweep."""
    rng = np.random.default_rng(0)
    contenders = []
    for model in ("gan", "cgan"):
        k = 10 if model == "cgan" else 0
        batches = real_batches(images, labels, BATCH, rng)
        with_labels = [(x, y if k else None) for x, y in batches]
        products = floor_products(k)
        flops = flop_count(products)
        contenders.append(Contender(f"{model}/floor", model, "floor: 22 matmuls", flops,
                                    floor_step(products)))

        net = npgan.build(npgan.book_config(model), seed=0)
        contenders.append(Contender(f"{model}/npgan", model, "npgan (book config)", flops,
                                    cycling(net.train_step, with_labels)))

        base = baseline_original.BaselineGAN(n_classes=k, seed=0)
        batches64 = [(x.astype(np.float64), y) for x, y in with_labels]
        contenders.append(Contender(f"{model}/baseline", model, "baseline float64 SGD",
                                    baseline_original.step_flops(k),
                                    cycling(base.train_step, batches64)))

        if torch_gan is not None:
            tensors = [(torch.from_numpy(x.copy()), None if y is None else torch.from_numpy(y))
                       for x, y in with_labels]
            for optimizer, name in (("adam", "PyTorch Adam"), ("sgd", "PyTorch SGD")):
                net_t = torch_gan.TorchGAN(npgan.book_config(model), optimizer, seed=0,
                                           threads=TORCH_THREADS)
                contenders.append(Contender(f"{model}/torch_{optimizer}", model, name, flops,
                                            cycling(net_t.train_step, tensors)))

    contenders += dcgan_contenders(images, labels, rng)

    # npgan's GAN step at other batch sizes (64 is the "gan/npgan" contender above)
    for B in SWEEP_BATCHES:
        if B == BATCH:
            continue
        config = npgan.book_config("gan")
        config.batch_size = B
        net = npgan.build(config, seed=0)
        batches = [(x, None) for x, _ in real_batches(images, labels, B, rng)]
        contenders.append(Contender(f"gan/npgan/B{B}", "gan", f"npgan B={B}",
                                    flop_count(floor_products(0, B)),
                                    cycling(net.train_step, batches), batch_size=B))
    return contenders


def dcgan_contenders(images, labels, rng):
    """The DCGAN step (book config, batch 64): npgan, its matrix products alone
    (recorded from one real step, see torch_dcgan.floor_products), PyTorch Adam."""
    from dcgan_floor import floor_products as dcgan_products

    batches = [(x, None) for x, _ in real_batches(images, labels, BATCH, rng)]
    net = npgan.build(npgan.book_config("dcgan"), seed=0)
    products = dcgan_products(npgan.build(npgan.book_config("dcgan"), seed=0), batches[0][0])
    flops = flop_count(products)
    out = [Contender("dcgan/floor", "dcgan", f"floor: {len(products)} matmuls", flops,
                     floor_step(products)),
           Contender("dcgan/npgan", "dcgan", "npgan (book config)", flops,
                     cycling(net.train_step, batches))]
    if torch_dcgan is not None:
        net_t = torch_dcgan.TorchDCGAN(npgan.book_config("dcgan"), seed=0, threads=TORCH_THREADS)
        tensors = [(torch.from_numpy(x.copy()), None) for x, _ in batches]
        out.append(Contender("dcgan/torch_adam", "dcgan", "PyTorch Adam", flops,
                             cycling(net_t.train_step, tensors)))
    return out


# ---------------------------------------------------------------- timing

SETTLE_SECONDS = 0.3


def time_round_robin(contenders, repeats, steps, budget, warmup=3):
    """Seconds per step: {key: [one figure per round]}.

    Each round times every contender once, in a rotated order; a sample is
    one untimed step (it absorbs the previous contender's idle threads) and
    then ``steps`` timed steps (scaled by 64/B for the batch-size sweep, so
    that every sample trains on about the same number of images). After
    ``budget`` seconds no new round starts (but at least MIN_ROUNDS are run)."""
    for c in contenders:
        for _ in range(warmup):  # work buffers, lazy initialisation
            c.step()
    samples = {c.key: [] for c in contenders}
    start = time.perf_counter()
    for r in range(repeats):
        shift = r % len(contenders)
        for c in contenders[shift:] + contenders[:shift]:
            n = max(2, round(steps * BATCH / c.batch_size))
            # Let the previous contender's worker threads stop spinning first
            # (OpenBLAS and PyTorch's OpenMP threads busy-wait after a call, and
            # would otherwise take a core from whoever is timed next).
            time.sleep(SETTLE_SECONDS)
            c.step()
            t0 = time.perf_counter()
            for _ in range(n):
                c.step()
            samples[c.key].append((time.perf_counter() - t0) / n)
        elapsed = time.perf_counter() - start
        print(f"  round {r + 1}/{repeats} done ({elapsed:.0f} s)", file=sys.stderr, flush=True)
        if elapsed > budget and MIN_ROUNDS <= r + 1 < repeats:
            print(f"  time budget of {budget:.0f} s used up: stopping after {r + 1} of "
                  f"{repeats} rounds (see --time-budget)", file=sys.stderr)
            break
    return samples


def summary(seconds):
    """Median and quartiles of a list of seconds-per-step, in ms."""
    ms = [1e3 * s for s in seconds]
    q = statistics.quantiles(ms, n=4) if len(ms) > 1 else [ms[0]] * 3
    return {"median_ms": statistics.median(ms), "p25_ms": q[0], "p75_ms": q[2], "samples_ms": ms}


# ---------------------------------------------------------------- memory, data loading

# Linux keeps a process's RSS high-water mark across exec, so the ru_maxrss of a
# child is at least the RSS of the process it was started from. This benchmark
# holds MNIST and PyTorch (about 0.9 GB), so it would measure itself: a small,
# fresh Python process starts the training run and reports the run's ru_maxrss
# (what /usr/bin/time -v does).
PEAK_RSS_CODE = """\
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(child.pid, 0)
child.returncode = os.waitstatus_to_exitcode(status)
print(f"\\nexit code {child.returncode}, ru_maxrss {usage.ru_maxrss} KiB")
"""


def peak_memory_of_training(threads=None, model="gan"):
    """Peak RSS of a real 1-epoch training run of ``model`` (all 60,000 images) in a child process."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads)) if threads else None
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "npgan", "train", "--model", model, "--epochs", "1",
               "--out", out, "--quiet"]
        start = time.perf_counter()
        run = subprocess.run([sys.executable, "-c", PEAK_RSS_CODE, *cmd], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wall = time.perf_counter() - start
    found = re.search(r"exit code (-?\d+), ru_maxrss (\d+) KiB\s*$", run.stdout)
    if run.returncode != 0 or not found or found.group(1) != "0":
        raise RuntimeError(f"the training run {' '.join(cmd)} failed:\n{run.stdout}")
    epoch = re.search(r"\(([\d.]+) s/epoch\)", run.stdout)
    return {
        "command": " ".join(["python"] + cmd[1:-2] + ["TMP", "--quiet"]),
        "peak_rss_mb": int(found.group(2)) * 1024 / 1e6,   # Linux reports kibibytes
        "wall_s": wall,
        "cli_s_per_epoch": float(epoch.group(1)) if epoch else None,
    }


LOAD_CODE = """\
import time
t0 = time.perf_counter()
import npgan
t1 = time.perf_counter()
images, labels = npgan.load_mnist()
t2 = time.perf_counter()
assert images.shape == (60000, 784)
print(t2 - t1, t1 - t0)
"""


def mnist_load_times(repeats=LOAD_REPEATS):
    """npgan.load_mnist() in fresh processes: [(load seconds, import seconds), ...]."""
    times = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", LOAD_CODE], capture_output=True,
                             text=True, check=True).stdout
        times.append(tuple(float(v) for v in out.split()))
    return times


# ---------------------------------------------------------------- machine

def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def blas_info():
    """NumPy's BLAS as built, and (for OpenBLAS) the kernel and threads used at run time."""
    info = {}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info = {k: blas.get(k) for k in ("name", "version", "openblas configuration")}
    except Exception as err:  # numpy < 1.26 has no mode="dicts"
        info["error"] = str(err)
    corename = openblas_function("openblas_get_corename")
    threads = openblas_function("openblas_get_num_threads")
    if corename and threads:
        corename.restype = ctypes.c_char_p
        info.update(openblas_core=corename().decode(), openblas_threads=threads())
    try:
        import threadpoolctl
        info["threadpools"] = threadpoolctl.threadpool_info()
    except ImportError:
        pass
    return info


def openblas_function(name):
    """The function ``name`` of the OpenBLAS library NumPy loaded (via ctypes), or
    None. NumPy's wheels rename the symbols, e.g. scipy_openblas_get_corename64_."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower()})
    except OSError:  # not Linux
        return None
    for path in paths:
        lib = ctypes.CDLL(path)
        for prefix, suffix in (("scipy_", "64_"), ("scipy_", ""), ("", "64_"), ("", "")):
            func = getattr(lib, f"{prefix}{name}{suffix}", None)
            if func is not None:
                return func
    return None


def set_threads(n):
    """Use n threads in NumPy's OpenBLAS and in PyTorch (for --threads)."""
    global TORCH_THREADS
    TORCH_THREADS = n
    set_num_threads = openblas_function("openblas_set_num_threads")
    if set_num_threads is None:
        sys.exit("--threads needs NumPy built with OpenBLAS (found no openblas_set_num_threads)")
    set_num_threads(n)


def machine_info():
    env = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas_info(),
        "torch": torch.__version__ if torch is not None else None,
        "torch_threads": TORCH_THREADS if torch is not None else None,
        "npgan": npgan.__version__,
        "git_commit": git_commit(),
        "env": {name: os.environ.get(name) for name in env},
    }


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, text=True,
                              capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


# ---------------------------------------------------------------- report

def step_table(contenders, stats):
    """Rows for the B=64 contenders: ms/step, s/epoch, ratio to the floor, npgan's speed-up."""
    rows = []
    for c in contenders:
        if c.batch_size != BATCH:
            continue
        ms = stats[c.key]["median_ms"]
        floor_ms = stats[f"{c.model}/floor"]["median_ms"]
        npgan_ms = stats[f"{c.model}/npgan"]["median_ms"]
        rows.append({
            "key": c.key, "model": c.model, "name": c.name, "mflop": c.flops / 1e6,
            "ms_per_step": ms, "p25_ms": stats[c.key]["p25_ms"], "p75_ms": stats[c.key]["p75_ms"],
            "s_per_epoch": ms * steps_per_epoch(BATCH) / 1e3,
            "ratio_to_floor": ms / floor_ms,
            "gflops": c.flops / ms / 1e6,
            "npgan_speedup": None if c.key.endswith(("/floor", "/npgan")) else ms / npgan_ms,
        })
    return rows


def sweep_table(contenders, stats):
    rows = []
    for B in SWEEP_BATCHES:
        key = "gan/npgan" if B == BATCH else f"gan/npgan/B{B}"
        ms = stats[key]["median_ms"]
        rows.append({"batch_size": B, "steps_per_epoch": steps_per_epoch(B), "ms_per_step": ms,
                     "s_per_epoch": ms * steps_per_epoch(B) / 1e3,
                     "images_per_s": B / ms * 1e3})
    return rows


def print_report(result):
    m = result["machine"]
    blas = m["blas"]
    print(f"\nnpgan training-step benchmark, {m['date']}")
    print(f"CPU {m['cpu']}, {m['cores']} cores; numpy {m['numpy']} "
          f"({blas.get('name')} {blas.get('version')}, core {blas.get('openblas_core', '?')}, "
          f"{blas.get('openblas_threads', '?')} threads); torch {m['torch']}")
    s = result["settings"]
    print(f"{s['rounds_done']} rounds × {s['steps']} steps per sample, interleaved; medians "
          f"(p25–p75 in brackets). Load average {m['load_average_at_start'][0]:.1f} at the start, "
          f"{result['load_average_at_end'][0]:.1f} at the end.\n"
          f"Epoch = {steps_per_epoch(BATCH)} steps of {BATCH}.")
    for model, flops in result["flops"].items():
        print(f"{model.upper()}: {flops['npgan'] / 1e6:.1f} MFLOP per step in the 22 matmuls "
              f"(baseline, all gradients: {flops['baseline'] / 1e6:.1f})")

    print(f"\n{'model':5} {'contender':22} {'MFLOP':>6} {'ms/step':>8} {'(p25–p75)':>13} "
          f"{'s/epoch':>8} {'× floor':>8} {'GFLOP/s':>8} {'npgan speed-up':>15}")
    for row in result["steps"]:
        spread = f"({row['p25_ms']:.1f}–{row['p75_ms']:.1f})"
        faster = "" if row["npgan_speedup"] is None else f"{row['npgan_speedup']:.2f}×"
        print(f"{row['model'].upper():5} {row['name']:22} {row['mflop']:6.1f} "
              f"{row['ms_per_step']:8.2f} {spread:>13} {row['s_per_epoch']:8.2f} "
              f"{row['ratio_to_floor']:8.2f} {row['gflops']:8.1f} {faster:>15}")
    print("× floor: ms/step ÷ the floor's; npgan speed-up: the contender's ms/step ÷ npgan's "
          "(> 1: npgan is faster).")
    if result["torch_skipped"]:
        print(result["torch_skipped"])

    print("\nnpgan GAN step vs batch size")
    print(f"{'B':>5} {'steps/epoch':>12} {'ms/step':>8} {'s/epoch':>8} {'images/s':>9}")
    for row in result["batch_sweep"]:
        print(f"{row['batch_size']:5d} {row['steps_per_epoch']:12d} {row['ms_per_step']:8.2f} "
              f"{row['s_per_epoch']:8.2f} {row['images_per_s']:9.0f}")

    mem = result["memory"]
    if mem:
        cli = f", {mem['cli_s_per_epoch']:.2f} s/epoch as the CLI reports it" \
            if mem["cli_s_per_epoch"] else ""
        print(f"\nPeak RSS of `{mem['command']}`: {mem['peak_rss_mb']:.0f} MB "
              f"(the float32 images alone are {N_TRAIN * 784 * 4 / 1e6:.0f} MB; "
              f"wall {mem['wall_s']:.1f} s{cli})")
        mem = result["memory_dcgan"]
        print(f"Peak RSS of `{mem['command']}`: {mem['peak_rss_mb']:.0f} MB (target < 1000 MB; "
              f"wall {mem['wall_s']:.1f} s, {mem['cli_s_per_epoch']:.2f} s/epoch)")
    else:
        print("\nPeak memory: skipped (--no-memory)")
    load = result["mnist_load"]
    verdict = "OK" if load["median_s"] < load["target_s"] else "over the target"
    print(f"MNIST load from the cache (fresh process, median of {len(load['samples_s'])}): "
          f"{load['median_s']:.2f} s (target < {load['target_s']:.0f} s: {verdict}); "
          f"import npgan {load['import_median_s']:.2f} s")


def write_json(path, data):
    """Write ``data`` to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.write("\n")


# ---------------------------------------------------------------- main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=15, help="timing rounds (default 15)")
    p.add_argument("--steps", type=int, default=10,
                   help="training steps per timing sample at batch 64 (default 10)")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 3 rounds of 3 steps (the memory run still happens "
                        "unless --no-memory)")
    p.add_argument("--time-budget", type=float, default=180, metavar="SECONDS",
                   help="start no new timing round after this many seconds, so that a busy "
                        f"machine does not stretch the run (at least {MIN_ROUNDS} rounds; "
                        "default 180; 0: no limit)")
    p.add_argument("--no-memory", action="store_true",
                   help="skip the peak-memory run (a full 1-epoch training)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads of NumPy's OpenBLAS and of PyTorch (default: as many as "
                        "`npgan train` uses, npgan.threads.choose_threads(): 1 unless "
                        "NPGAN_THREADS says otherwise; if OPENBLAS_NUM_THREADS or the like is "
                        f"set, OpenBLAS keeps it and PyTorch uses {TORCH_THREADS})")
    p.add_argument("--json", default=HERE / "results" / "latest.json", type=Path,
                   help="where to write the figures (default benchmarks/results/latest.json)")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.steps = 3, 3
    if args.repeats < 1 or args.steps < 1:
        p.error("--repeats and --steps must be at least 1")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be at least 1")
    if args.threads is None:   # time npgan as it trains, not as OpenBLAS would start
        try:
            args.threads = npgan.threads.choose_threads()
        except ValueError as err:   # a bad NPGAN_THREADS
            p.error(str(err))
    if args.time_budget <= 0:
        args.time_budget = float("inf")
    return args


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    torch_skipped = None if torch is not None else TORCH_MISSING
    if torch_skipped:
        print(torch_skipped, file=sys.stderr)
    if args.threads:
        set_threads(args.threads)
    machine = machine_info()

    print("loading MNIST ...", file=sys.stderr)
    images, labels = npgan.load_mnist()
    contenders = make_contenders(images, labels)
    print(f"timing {len(contenders)} contenders round-robin ...", file=sys.stderr)
    samples = time_round_robin(contenders, args.repeats, args.steps, args.time_budget)
    stats = {key: summary(seconds) for key, seconds in samples.items()}

    memory = memory_dcgan = None
    if not args.no_memory:
        print("peak memory: 1 epoch of GAN training in a child process ...", file=sys.stderr)
        memory = peak_memory_of_training(args.threads)
        print("peak memory: 1 epoch of DCGAN training in a child process ...", file=sys.stderr)
        memory_dcgan = peak_memory_of_training(args.threads, "dcgan")
    print("MNIST load time ...", file=sys.stderr)
    loads = mnist_load_times()

    result = {
        "machine": machine,
        "settings": {"repeats": args.repeats, "rounds_done": len(samples["gan/npgan"]),
                     "steps": args.steps,
                     "time_budget_s": None if args.time_budget == float("inf") else args.time_budget,
                     "threads": args.threads, "batch_size": BATCH,
                     "steps_per_epoch": steps_per_epoch(BATCH), "quick": args.quick},
        "flops": {model: {"npgan": flop_count(floor_products(k)),
                          "baseline": baseline_original.step_flops(k)}
                  for model, k in (("gan", 0), ("cgan", 10))},
        "steps": step_table(contenders, stats),
        "batch_sweep": sweep_table(contenders, stats),
        "samples": stats,
        "memory": memory,
        "memory_dcgan": memory_dcgan,
        "mnist_load": {"samples_s": [t for t, _ in loads],
                       "median_s": statistics.median(t for t, _ in loads),
                       "import_median_s": statistics.median(t for _, t in loads),
                       "target_s": 1.0},
        "torch_skipped": torch_skipped,
        "load_average_at_end": os.getloadavg(),
        "total_s": time.perf_counter() - start,
    }
    print_report(result)
    write_json(args.json, result)
    print(f"\nwrote {args.json} (benchmark took {result['total_s']:.0f} s)")


if __name__ == "__main__":
    main()
