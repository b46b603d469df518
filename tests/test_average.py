"""The average of G's weights (average.py): its formula, that it leaves training
alone, that samples use it, and that checkpoints keep it."""

import numpy as np
import pytest

from npgan import GANConfig, build, checkpoint
from npgan.average import WeightAverage
from npgan.dcgan import DCGANConfig
from npgan.infogan import InfoGANConfig

SMALL = dict(latent_dim=8, g_hidden=(16, 32), d_hidden=(32, 16), batch_size=8)


def steps(model, n, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        labels = rng.integers(0, 10, 8) if model.conditional else None
        model.train_step(rng.uniform(-1, 1, (8, 784)).astype(model.dtype), labels)


def test_formula_matches_a_plain_loop():
    """θ̄_t = β_t θ̄_{t−1} + (1 − β_t) θ_t with β_t = min(β, (1+t)/(10+t)), written out."""
    model = build(GANConfig(**SMALL, dtype="float64", ema_decay=0.9), seed=3)
    expected = model.G.flat_params.copy()
    for t in range(1, 41):
        steps(model, 1, seed=t)
        beta = min(0.9, (1 + t) / (10 + t))
        expected = beta * expected + (1 - beta) * model.G.flat_params
        assert model.G_average.updates == t
    np.testing.assert_allclose(model.G_average.net.flat_params, expected, rtol=1e-12, atol=1e-14)
    assert not np.allclose(model.G_average.net.flat_params, model.G.flat_params)


def test_average_of_fixed_weights_converges_to_them():
    g = build(GANConfig(**SMALL, dtype="float64"), seed=1).G
    spare = build(GANConfig(**SMALL, dtype="float64"), seed=2).G
    average = WeightAverage(spare, g, 0.99)
    assert np.array_equal(spare.flat_params, g.flat_params)   # starts at the trained weights
    target = g.flat_params.copy()
    g.flat_params[...] = 0
    for _ in range(2000):
        average.update(g)
    assert np.abs(spare.flat_params).max() < 1e-6 * np.abs(target).max()


@pytest.mark.parametrize("decay", [0, 1, 1.5, -0.1])
def test_decay_out_of_range_is_refused(decay):
    if decay == 0:   # 0 is the config's "no average"
        assert build(GANConfig(**SMALL, ema_decay=0), seed=0).G_average is None
        return
    with pytest.raises(ValueError, match="ema_decay"):
        GANConfig(**SMALL, ema_decay=decay)


@pytest.mark.parametrize("extra", [{}, {"n_classes": 10}])
def test_training_is_the_same_with_or_without_the_average(extra):
    """The average is a bystander: same seed, same D and G, step for step; only
    the samples come from the average."""
    plain = build(GANConfig(**SMALL, **extra, ema_decay=0.0), seed=5)
    averaged = build(GANConfig(**SMALL, **extra, ema_decay=0.99), seed=5)
    assert plain.sampler is plain.G and averaged.sampler is averaged.G_average.net
    steps(plain, 6)
    steps(averaged, 6)
    assert np.array_equal(plain.G.flat_params, averaged.G.flat_params)
    assert np.array_equal(plain.D.flat_params, averaged.D.flat_params)
    labels = np.arange(5) % 10 if plain.conditional else None
    z = plain.sample_noise(5, np.random.default_rng(0))
    assert np.array_equal(plain.generate(z, labels), plain.G(np.hstack(
        [z, np.eye(10, dtype=z.dtype)[labels]]) if labels is not None else z))
    from_average = averaged.generate(z, labels)
    assert not np.allclose(from_average, plain.generate(z, labels))
    averaged.G.flat_params[...] = averaged.G_average.net.flat_params   # G := its average
    assert np.array_equal(from_average, averaged.G(np.hstack(
        [z, np.eye(10, dtype=z.dtype)[labels]]) if labels is not None else z))


@pytest.mark.parametrize("config", [
    GANConfig(**SMALL, ema_decay=0.999),
    GANConfig(**SMALL, n_classes=10, ema_decay=0.99),
    InfoGANConfig(latent_dim=8, g_hidden=(16,), d_hidden=(16,), batch_size=8, ema_decay=0.9),
    DCGANConfig(latent_dim=8, g_channels=(4, 2), d_channels=(2, 4), batch_size=8, ema_decay=0.9),
])
def test_checkpoint_keeps_the_average(tmp_path, config):
    model = build(config, seed=4)
    steps(model, 3)
    path = checkpoint.save(model, tmp_path / "ck.npz", epoch=1, seed=4)
    loaded, meta = checkpoint.load(path)
    assert meta["average_updates"] == 3 == loaded.G_average.updates
    assert np.array_equal(loaded.G_average.net.flat_params, model.G_average.net.flat_params)
    assert np.array_equal(loaded.G_average.net.flat_buffers, model.G_average.net.flat_buffers)
    if model.G.flat_buffers.size:   # DCGAN: BatchNorm's running statistics are averaged too
        assert not np.array_equal(model.G_average.net.flat_buffers, model.G.flat_buffers)
    for m in (model, loaded):
        m.rng = np.random.default_rng(9)
    assert np.array_equal(model.sample(6, rng=np.random.default_rng(1)),
                          loaded.sample(6, rng=np.random.default_rng(1)))


def test_held_out_images_for_tuning(mnist_dir):
    """against="validation" compares with train[50000:60000], never the test images."""
    from npgan import metrics

    train, _ = metrics.load_images("mnist", "train")
    assert np.array_equal(metrics.held_out("mnist", "validation"), train[50_000:60_000])
    assert len(metrics.held_out("mnist", "test")) == 10_000
    with pytest.raises(ValueError, match="against must be 'test' or 'validation'"):
        metrics.held_out("mnist", "train")


def test_files_from_before_the_average_load_without_one(tmp_path):
    """A checkpoint whose config has no ema_decay was written before average.py:
    it has no averaged weights, and loads as a model that samples from G."""
    import json

    from npgan import bookruns

    model = build(GANConfig(**SMALL, ema_decay=0.0), seed=2)
    steps(model, 2)
    path = checkpoint.save(model, tmp_path / "old.npz")
    with np.load(path) as data:
        arrays = dict(data)
    meta = json.loads(bytes(arrays["meta"]).decode())
    del meta["config"]["ema_decay"]
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(tmp_path / "older.npz", **arrays)
    loaded, _ = checkpoint.load(tmp_path / "older.npz")
    assert loaded.config.ema_decay == 0 and loaded.G_average is None
    assert np.array_equal(loaded.sample(4, rng=np.random.default_rng(0)),
                          model.sample(4, rng=np.random.default_rng(0)))
    # a book run's stored facts from then still match a recipe without the average ...
    facts = {"model": "gan", "config": json.loads(model.config.to_json()), "epochs": 1}
    assert bookruns._same_run({**facts, "config": meta["config"]}, facts)
    # ... but not the book's recipe now, which keeps one
    now = {**facts, "config": json.loads(GANConfig(**SMALL).to_json())}
    assert not bookruns._same_run({**facts, "config": meta["config"]}, now)
