"""Checkpoints: save → load gives back the same model; bad files raise CheckpointError."""

import json
import zipfile

import numpy as np
import pytest

from npgan import GANConfig, build
from npgan import checkpoint
from npgan.checkpoint import CheckpointError


def trained_model(**overrides):
    settings = dict(latent_dim=8, g_hidden=(16, 32), d_hidden=(32, 16), batch_size=8)
    settings.update(overrides)
    model = build(GANConfig(**settings), seed=11)
    rng = np.random.default_rng(0)
    for _ in range(3):  # non-trivial weights and optimizer state
        labels = rng.integers(0, 10, 8) if model.conditional else None
        model.train_step(rng.uniform(-1, 1, (8, 784)).astype(model.dtype), labels)
    return model


@pytest.mark.parametrize("overrides", [
    {}, {"n_classes": 10}, {"optimizer": "sgd", "momentum": 0.9, "dtype": "float64"},
    {"n_classes": 10, "activation": "relu", "noise": "uniform", "real_label": 0.9, "d_dropout": 0.0},
])
def test_round_trip(tmp_path, overrides):
    model = trained_model(**overrides)
    path = checkpoint.save(model, tmp_path / "ck.npz", epoch=3, seed=7)
    assert path == tmp_path / "ck.npz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.npz"]  # no *.part left behind
    loaded, meta = checkpoint.load(path)
    assert type(loaded) is type(model)
    assert loaded.config == model.config
    assert meta["epoch"] == 3 and meta["seed"] == 7 and meta["format"] == checkpoint.FORMAT
    for net in ("G", "D"):
        a, b = getattr(model, net).flat_params, getattr(loaded, net).flat_params
        assert a.dtype == b.dtype and np.array_equal(a, b)
    for opt_a, opt_b in ((model.opt_g, loaded.opt_g), (model.opt_d, loaded.opt_d)):
        state_a, state_b = opt_a.state(), opt_b.state()
        assert state_a.keys() == state_b.keys()
        for key in state_a:
            assert np.array_equal(state_a[key], state_b[key]), key
        assert any(np.any(v != 0) for k, v in state_a.items() if k != "t")
    labels = np.arange(12) % 10 if model.conditional else None
    for seed in (0, 5):
        s1 = model.sample(12, rng=np.random.default_rng(seed), labels=labels)
        s2 = loaded.sample(12, rng=np.random.default_rng(seed), labels=labels)
        assert np.array_equal(s1, s2)
    # the optimizer goes on from the same state: one more identical step
    for m in (model, loaded):
        m.opt_d.grads[...] = 0.5
        m.opt_d.step()
    assert np.array_equal(model.D.flat_params, loaded.D.flat_params)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        checkpoint.load(tmp_path / "nope.npz")
    with pytest.raises(CheckpointError):
        checkpoint.load(tmp_path)  # a folder is not a checkpoint


def _write_npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def corrupt_variants(good_bytes, tmp_path):
    """(label, bytes) of files that are not valid checkpoints."""
    meta = {"format": checkpoint.FORMAT, "config": json.loads(GANConfig().to_json()),
            "epoch": 1, "seed": 0}
    variants = [("empty", b""), ("garbage", b"this is not a checkpoint\n" * 10),
                ("truncated", good_bytes[:len(good_bytes) // 2]),
                ("npy magic", b"\x93NUMPY garbage"), ("pickle", b"\x80\x04K\x01.")]
    flipped = bytearray(good_bytes)
    flipped[len(flipped) // 3] ^= 0xFF
    variants.append(("flipped byte", bytes(flipped)))

    def npz(**arrays):
        p = tmp_path / "tmp-variant.npz"
        _write_npz(p, **arrays)
        return p.read_bytes()

    def meta_bytes(m):
        return np.frombuffer(json.dumps(m).encode(), dtype=np.uint8)

    variants += [
        ("no meta", npz(G=np.zeros(3))),
        ("meta not json", npz(meta=np.frombuffer(b"{oops", dtype=np.uint8))),
        ("meta a list", npz(meta=meta_bytes([1, 2]))),
        ("wrong format", npz(meta=meta_bytes({**meta, "format": "other-9"}))),
        ("unknown config key", npz(meta=meta_bytes({**meta, "config": {"bogus": 1}}))),
        ("wrong weight count", npz(meta=meta_bytes(meta), G=np.zeros(5, np.float32),
                                   D=np.zeros(5, np.float32))),
        ("no optimizer state", npz(meta=meta_bytes({**meta, "config": json.loads(
            GANConfig(g_hidden=(2, 2), d_hidden=(2, 2), latent_dim=2).to_json())}),
            G=np.zeros(2 * 2 + 2 + 2 * 2 + 2 + 2 * 784 + 784, np.float32),
            D=np.zeros(784 * 2 + 2 + 2 * 2 + 2 + 2 + 1, np.float32))),
    ]
    plain = tmp_path / "tmp-plain.npy"
    np.save(plain, np.arange(4))
    variants.append(("plain npy", plain.read_bytes()))
    return variants


def test_corrupt_files_raise_checkpoint_error(tmp_path):
    good = checkpoint.save(trained_model(), tmp_path / "good.npz").read_bytes()
    for label, blob in corrupt_variants(good, tmp_path):
        path = tmp_path / f"bad-{label.replace(' ', '-')}.npz"
        path.write_bytes(blob)
        with pytest.raises(CheckpointError) as info:
            checkpoint.load(path)
        assert str(path) in str(info.value), label
        assert "train again" in str(info.value), label


def test_save_is_atomic(tmp_path, monkeypatch):
    model = trained_model()
    path = checkpoint.save(model, tmp_path / "ck.npz", epoch=1)
    before = path.read_bytes()

    def failing_savez(f, **arrays):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(model, path, epoch=2)
    assert path.read_bytes() == before  # the old checkpoint is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.npz"]  # and no *.part remains
    monkeypatch.undo()
    assert zipfile.is_zipfile(path) and checkpoint.load(path)[1]["epoch"] == 1


def test_epoch_saver_keeps_every_nth_and_the_last_epoch(tmp_path):
    from npgan.checkpoint import epoch_saver, load as load_checkpoint
    import npgan
    model = npgan.GAN(npgan.GANConfig(batch_size=32), seed=3)
    images = np.random.default_rng(0).uniform(-1, 1, (64, 784)).astype(np.float32)
    npgan.train(model, images, epochs=5, progress=False,
                on_epoch_end=epoch_saver(model, tmp_path / "run", epochs=5, every=2, seed=3))
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == ["epoch_002.npz", "epoch_004.npz", "epoch_005.npz", "history.csv"]
    last, meta = load_checkpoint(tmp_path / "run" / "epoch_005.npz")
    assert meta["epoch"] == 5 and meta["seed"] == 3
    np.testing.assert_array_equal(last.G.flat_params, model.G.flat_params)


def test_book_checkpoints_trains_once_then_reuses(tmp_path, monkeypatch):
    from npgan import book_config, data
    from npgan.checkpoint import book_checkpoints, load as load_checkpoint
    cached = data.data_dir() / "mnist"
    monkeypatch.setenv("NPGAN_DATA", str(tmp_path))  # the runs go to tmp_path/runs
    (tmp_path / "mnist").mkdir()
    for name in data.MNIST_SHA256:  # the real MNIST cache, linked rather than copied
        (tmp_path / "mnist" / name).symlink_to(cached / name)
    first = book_checkpoints("gan", 2, subset=128, every=1, progress=False)
    assert sorted(first) == [1, 2]
    assert first[2].parent == tmp_path / "runs" / "book-gan-subset128"
    stamp = first[2].stat().st_mtime_ns
    again = book_checkpoints("gan", 2, subset=128, every=1, progress=False)
    assert again == first and first[2].stat().st_mtime_ns == stamp  # reused, not retrained
    model, meta = load_checkpoint(first[2])
    assert meta["epoch"] == 2 and model.config == book_config("gan")
