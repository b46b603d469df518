"""The training loop: determinism, divergence detection, history, snapshots."""

import numpy as np
import pytest

from npgan import GANConfig, build, train
from npgan.train import HISTORY_COLUMNS, TrainingDiverged, fixed_inputs


def synthetic_data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, 784)).astype(np.float32), rng.integers(0, 10, n)


def small_config(**overrides):
    settings = dict(latent_dim=16, g_hidden=(32, 64), d_hidden=(64, 32), batch_size=32)
    settings.update(overrides)
    return GANConfig(**settings)


@pytest.mark.parametrize("n_classes", [0, 10])
def test_same_seed_gives_bitwise_identical_training(n_classes):
    """Book-size networks (dropout on, Adam), a few steps: same seeds → identical bits."""
    images, labels = synthetic_data(200)
    labels = labels if n_classes else None

    def run(model_seed, order_seed=0):
        model = build(GANConfig(n_classes=n_classes, batch_size=64), seed=model_seed)
        history = train(model, images, labels, epochs=2, seed=order_seed, progress=False)
        return model, history

    a, ha = run(1)
    b, hb = run(1)
    assert np.array_equal(a.G.flat_params, b.G.flat_params)
    assert np.array_equal(a.D.flat_params, b.D.flat_params)
    assert ha.records == hb.records
    assert all(np.array_equal(ha.snapshots[e], hb.snapshots[e]) for e in ha.snapshots)
    c, _ = run(2)  # another model seed: other initial weights, noise and dropout
    assert not np.array_equal(a.G.flat_params, c.G.flat_params)
    d, _ = run(1, order_seed=5)  # another data order
    assert not np.array_equal(a.D.flat_params, d.D.flat_params)


def test_history_records_snapshots_and_callback(tmp_path):
    images, labels = synthetic_data(100)  # 3 steps of 32 per epoch, 4 images dropped
    model = build(small_config(n_classes=10), seed=0)
    calls = []
    history = train(model, images, labels, epochs=3, seed=0, snapshot_epochs=(2,), progress=False,
                    on_epoch_end=lambda epoch, h: calls.append((epoch, len(h.records))))
    assert calls == [(1, 3), (2, 6), (3, 9)]
    assert [r[:2] for r in history.records] == [(e, i) for i, e in
                                                zip(range(1, 10), [1, 1, 1, 2, 2, 2, 3, 3, 3])]
    assert sorted(history.snapshots) == [0, 2, 3]
    for grid in history.snapshots.values():
        assert grid.dtype == np.uint8 and grid.shape == (10 * 30 + 2, 10 * 30 + 2)
    assert not np.array_equal(history.snapshots[0], history.snapshots[3])
    d_real = history.column("d_real")
    assert d_real.shape == (9,) and np.all((d_real > 0) & (d_real < 1))
    path = tmp_path / "history.csv"
    history.to_csv(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv"]
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(HISTORY_COLUMNS) and len(lines) == 10
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    np.testing.assert_allclose(table[:, 2], history.column("d_loss"), rtol=1e-5)
    np.testing.assert_array_equal(table[:, 1], np.arange(1, 10))


def test_fixed_inputs():
    model = build(small_config(n_classes=10), seed=0)
    state = model.rng.bit_generator.state
    z1, labels = fixed_inputs(model)
    z2, _ = fixed_inputs(model)
    assert model.rng.bit_generator.state == state  # the model's own generator is not used
    assert z1.shape == (100, 16) and np.array_equal(z1, z2)
    np.testing.assert_array_equal(labels.reshape(10, 10), np.repeat(np.arange(10), 10).reshape(10, 10))
    assert np.all(labels.reshape(10, 10) == np.arange(10)[:, None])  # row r holds digit r
    z, labels = fixed_inputs(build(small_config(), seed=0))
    assert z.shape == (100, 16) and labels is None


def test_bad_arguments():
    images, labels = synthetic_data(100)
    with pytest.raises(ValueError, match="labels="):
        train(build(small_config(n_classes=10)), images, progress=False)
    with pytest.raises(ValueError, match=r"shape \(N, 784\)"):
        train(build(small_config()), images.reshape(100, 28, 28), progress=False)
    with pytest.raises(ValueError, match="fewer than one batch"):
        train(build(small_config()), images[:31], progress=False)


@pytest.mark.parametrize("net", ["G", "D"])
def test_nan_weights_stop_training_at_the_first_iteration(net):
    images, labels = synthetic_data(128)
    model = build(small_config(), seed=0)
    getattr(model, net).flat_params[7] = np.nan
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as info:
        train(model, images, epochs=2, progress=False)
    message = str(info.value)
    # NaN in G's weights reaches D's through the D step: either may be named
    assert "at iteration 1:" in message and "weights became NaN or infinite" in message
    assert "Lower the learning rates" in message


def test_huge_learning_rate_diverges_with_the_iteration_named():
    images, _ = synthetic_data(256)
    model = build(small_config(lr_d=1e30, lr_g=1e30), seed=0)
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match=r"at iteration \d+: "):
        train(model, images, epochs=3, progress=False)


def test_nan_images_are_reported():
    """Refused before the first step (issue 30): a step on them made every weight NaN."""
    images, _ = synthetic_data(64)
    images[3, 5] = np.nan
    model = build(small_config(), seed=0)
    with pytest.raises(ValueError, match=r"images hold NaN or infinite values \(row 3 first\)"):
        train(model, images, progress=False)
    assert model.opt_d.t == 0


def test_lr_decay_lowers_both_rates_over_the_last_part_of_the_run():
    """lr_decay=0.5 over 2 epochs of 3 steps: the first 3 steps at the full rates
    (the weights match a run without decay after epoch 1), then 3/3, 2/3, 1/3 of them."""
    images, _ = synthetic_data(100)
    seen = []

    def run(decay):
        model = build(small_config(lr_decay=decay, lr_d=1e-3, lr_g=5e-4), seed=0)
        step = model.train_step

        def recording_step(*args):
            seen.append((decay, model.opt_d.lr, model.opt_g.lr))
            return step(*args)

        model.train_step = recording_step
        after_first = []
        train(model, images, epochs=2, seed=0, progress=False,
              on_epoch_end=lambda epoch, h: after_first.append(model.G.flat_params.copy()))
        return after_first

    plain, decayed = run(0.0), run(0.5)
    np.testing.assert_array_equal(plain[0], decayed[0])
    assert not np.array_equal(plain[1], decayed[1])
    rates = [(d, g) for decay, d, g in seen if decay == 0.5]
    np.testing.assert_allclose([d for d, _ in rates], [1e-3] * 4 + [1e-3 * 2 / 3, 1e-3 / 3])
    np.testing.assert_allclose([g / d for d, g in rates], [0.5] * 6)
    assert all(d == 1e-3 for decay, d, _ in seen if decay == 0.0)
    with pytest.raises(ValueError, match="lr_decay"):
        small_config(lr_decay=1.5)
