"""npgan.threads: who decides the BLAS threads, and that the limit is applied."""

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from npgan import GANConfig, build, train
from npgan.threads import BLAS_VARIABLES, DEFAULT_THREADS, blas_threads, choose_threads


def blas_thread_counts():
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


@pytest.fixture
def clean_env(monkeypatch):
    for name in (*BLAS_VARIABLES, "NPGAN_THREADS"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_order_of_the_rules(clean_env):
    assert choose_threads() == DEFAULT_THREADS == 1
    clean_env.setenv("OPENBLAS_NUM_THREADS", "2")          # the user's own setting is kept
    assert choose_threads() is None
    clean_env.setenv("NPGAN_THREADS", "2")                 # npgan's own variable wins over it
    assert choose_threads() == 2
    assert choose_threads(threads=1) == 1                  # and the argument over both


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5", ""])
def test_bad_values_are_refused(clean_env, bad):
    if bad == "":   # empty: as if unset
        clean_env.setenv("NPGAN_THREADS", bad)
        assert choose_threads() == DEFAULT_THREADS
        return
    clean_env.setenv("NPGAN_THREADS", bad)
    with pytest.raises(ValueError, match=f"NPGAN_THREADS must be a whole number of threads ≥ 1, got '{bad}'"):
        choose_threads()
    with pytest.raises(ValueError, match="threads= must be"):
        choose_threads(threads=bad)


def test_limit_is_applied_and_restored(clean_env):
    if not blas_thread_counts():
        pytest.skip("NumPy's BLAS is not visible to threadpoolctl here")
    before = blas_thread_counts()
    with blas_threads(2) as n:
        assert n == 2 and blas_thread_counts() == {2}
        with blas_threads(1):
            assert blas_thread_counts() == {1}
    assert blas_thread_counts() == before


def test_train_runs_under_its_threads(clean_env):
    if not blas_thread_counts():
        pytest.skip("NumPy's BLAS is not visible to threadpoolctl here")
    model = build(GANConfig(g_hidden=(16,), d_hidden=(16,), batch_size=8), seed=0)
    seen = []
    original = model.train_step

    def spy(*args):
        seen.append(blas_thread_counts())
        return original(*args)

    model.train_step = spy
    images = np.random.default_rng(0).uniform(-1, 1, (16, 784)).astype(np.float32)
    with blas_threads(2):
        train(model, images, epochs=1, progress=False, threads=1)
        assert blas_thread_counts() == {2}
    assert seen == [{1}, {1}]


@pytest.fixture
def bench_train(monkeypatch):
    """benchmarks/bench_train.py as a module (it is a script, not part of npgan)."""
    import importlib
    from pathlib import Path
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    return importlib.import_module("bench_train")


def test_the_benchmark_times_as_many_threads_as_training_uses(clean_env, bench_train):
    # `make bench` must time npgan the way `npgan train` runs it (one thread by
    # default), not with however many threads OpenBLAS would start on its own
    assert bench_train.parse_args([]).threads == DEFAULT_THREADS
    assert bench_train.parse_args(["--threads", "2"]).threads == 2
    clean_env.setenv("NPGAN_THREADS", "2")
    assert bench_train.parse_args([]).threads == 2
    clean_env.delenv("NPGAN_THREADS")
    clean_env.setenv("OPENBLAS_NUM_THREADS", "2")          # the user's own setting: left alone
    assert bench_train.parse_args([]).threads is None
    clean_env.setenv("NPGAN_THREADS", "two")
    with pytest.raises(SystemExit) as stop:                 # argparse: one line, exit 2
        bench_train.parse_args([])
    assert stop.value.code == 2
