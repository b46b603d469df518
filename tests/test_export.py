"""npgan.export: the generator as page data (the widgets of 21.1/21.2).

The page's JavaScript is tested in the browser (tests/browser/check_demo.py); here
the format is read back by an independent reader written from the format's
description (bit k of the stream is bit k mod b of value k div b), and the
decoded network is run with plain NumPy against npgan's own G.
"""

import base64
import dataclasses
import json
import re

import numpy as np
import pytest

import npgan
from npgan import export, models
from npgan.plot import to_uint8


def read_bits(data, bits, count):
    """Independent of export.unpack_bits: one value at a time, bit by bit."""
    raw = np.frombuffer(data, dtype=np.uint8)
    values = []
    for k in range(count):
        v = 0
        for b in range(bits):
            pos = k * bits + b
            v |= int((raw[pos // 8] >> (pos % 8)) & 1) << b
        values.append(v)
    return np.array(values)


def read_tensor(t):
    count = int(np.prod(t["shape"]))
    top = 2 ** (t["bits"] - 1) - 1
    ints = export.unpack_bits(base64.b85decode(t["q"]), t["bits"], count).astype(np.int64) - top
    scales = np.frombuffer(base64.b85decode(t["scale"]), dtype="<f4")
    shape = [1] * len(t["shape"])
    shape[t["axis"]] = -1
    return ints.reshape(t["shape"]).astype(np.float32) * scales.reshape(shape)


def run_exported(data, x):
    """G's forward pass from the page data alone (what npgan-demo.js computes)."""
    h = np.asarray(x, dtype=np.float64)
    for spec in data["layers"]:
        kind = spec["type"]
        if kind == "linear":
            b = np.frombuffer(base64.b85decode(spec["b"]), dtype="<f4")
            h = h @ read_tensor(spec["W"]).astype(np.float64) + b
        elif kind == "leaky_relu":
            h = np.where(h > 0, h, spec["slope"] * h)
        elif kind == "tanh":
            h = np.tanh(h)
        elif kind == "reshape":
            h = h.reshape(len(h), *spec["shape"])
        elif kind == "affine":   # batch norm with running statistics, per channel
            scale, shift = (np.frombuffer(base64.b85decode(spec[k]), dtype="<f4") for k in ("scale", "shift"))
            h = h * scale[:, None, None] + shift[:, None, None]
        elif kind == "conv_transpose2d":   # PyTorch's own transposed convolution
            import torch
            b = np.frombuffer(base64.b85decode(spec["b"]), dtype="<f4")
            h = torch.nn.functional.conv_transpose2d(
                torch.from_numpy(h), torch.from_numpy(read_tensor(spec["W"]).astype(np.float64)),
                torch.from_numpy(b.astype(np.float64)), stride=spec["stride"],
                padding=spec["padding"]).numpy()
        else:
            raise AssertionError(f"layer type {kind} not covered by this reader")
    return h


@pytest.mark.parametrize("bits", [8, 11, 12, 16])
def test_bit_packing_round_trip(bits):
    rng = np.random.default_rng(bits)
    values = rng.integers(0, 2 ** bits, size=101)
    values[:2] = 0, 2 ** bits - 1
    packed = export.pack_bits(values, bits)
    assert len(packed) == -(-101 * bits // 8)
    assert np.array_equal(read_bits(packed, bits, 101), values)
    assert np.array_equal(export.unpack_bits(packed, bits, 101), values)


def test_quantize_error_is_half_a_step_per_output_unit():
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((50, 7)) * np.array([1, 10, 0.01, 3, 1, 1, 0])).astype(np.float32)
    ints, scales = export.quantize(w, axis=1, bits=8)
    assert ints.min() >= -127 and ints.max() <= 127
    assert np.array_equal(np.abs(ints).max(axis=0)[:6], np.full(6, 127))   # the largest weight of a unit
    back = export.dequantize(ints, scales, axis=1)
    assert np.all(np.abs(back - w) <= scales / 2 * (1 + 1e-6))
    assert np.all(back[:, 6] == 0)                                       # an all-zero unit stays 0


@pytest.mark.parametrize("name", ["gan", "cgan"])
def test_exported_generator_reproduces_npgan(name):
    model = models.build(models.book_config(name), seed=3)
    data = export.export_generator(model, source=f"runs/book-{name}/epoch_060.npz", epoch=60)
    assert data["format"] == export.FORMAT and data["name"] == name
    assert data["inputSize"] == model.G.layers[0].W.shape[0]
    assert [p["part"] for p in data["input"]] == (["z", "label"] if name == "cgan" else ["z"])
    assert data["probeError"] <= export.MAX_ERROR
    assert 8 <= data["bits"] <= 16
    x = export.probe_inputs(model, 200, seed=11)          # not the probe batch of the export
    ours = to_uint8(run_exported(data, x))
    theirs = to_uint8(model.sampler(x))
    assert np.abs(ours.astype(int) - theirs).max() <= 1
    if data["bits"] > 8:   # the chosen width is the smallest that keeps the bound
        fewer = export.grey_error(model, export._layer_specs(model.sampler), data["bits"] - 1,
                                  export.probe_inputs(model, 1000))
        assert fewer > export.MAX_ERROR


def test_exported_dcgan_reproduces_npgan():
    pytest.importorskip("torch")
    if "dcgan" not in models.names():
        pytest.skip("no DCGAN in this npgan")
    model = models.build(models.book_config("dcgan"), seed=1)
    rng = np.random.default_rng(2)
    for layer in model.G.layers:   # batch-norm statistics as after training, not the initial 0 and 1
        if isinstance(layer, npgan.batchnorm.BatchNorm):
            layer.running_mean[...] = rng.normal(0, 0.3, layer.running_mean.shape)
            layer.running_var[...] = rng.uniform(0.5, 2.0, layer.running_var.shape)
            layer.beta[...] = rng.normal(0, 0.1, layer.beta.shape)
    data = export.export_generator(model, source="runs/book-dcgan/epoch_010.npz", n_probe=200)
    types = [spec["type"] for spec in data["layers"]]
    assert types == ["linear", "reshape", "affine", "leaky_relu", "conv_transpose2d", "affine",
                     "leaky_relu", "conv_transpose2d", "tanh", "reshape"]
    x = export.probe_inputs(model, 50, seed=5)
    ours = to_uint8(run_exported(data, x).reshape(50, -1))
    assert np.abs(ours.astype(int) - to_uint8(model.G(x))).max() <= 1


def test_cgan_probe_inputs_are_one_hot_labels():
    model = models.build(models.book_config("cgan"))
    x = export.probe_inputs(model, 500)
    labels = x[:, model.config.latent_dim:]
    assert np.array_equal(labels.sum(axis=1), np.ones(500)) and set(np.unique(labels)) == {0, 1}
    assert len(np.unique(labels.argmax(axis=1))) == 10


def test_infogan_layout_has_its_codes():
    if "infogan" not in models.names():
        pytest.skip("no InfoGAN in this npgan")
    model = models.build(models.book_config("infogan"))
    parts = export.input_layout(model)
    assert [(p["part"], p["size"]) for p in parts] == [("z", 62), ("cat", 10), ("cont", 2)]
    x = export.probe_inputs(model, 400)
    assert x.shape == (400, model.G.layers[0].W.shape[0])
    assert x[:, 72:].min() < -1.5 and x[:, 72:].max() > 1.5   # the sliders reach ±2
    if hasattr(model.config, "z_std"):   # z as loud as the model's own prior
        wide = models.build(dataclasses.replace(models.book_config("infogan"), z_std=3.0))
        assert export.input_layout(wide)[0]["scale"] == 3.0
        z = export.probe_inputs(wide, 400)[:, :62]
        assert 2.7 < z.std() < 3.3


def test_data_script_is_a_classic_assignment():
    model = models.build(models.book_config("gan"))
    data = export.export_generator(model, source="runs/x/epoch_001.npz", n_probe=50)
    script = export.data_script(data)
    m = re.fullmatch(r'window\.npganDemoData = window\.npganDemoData \|\| \{\};\n'
                     r'window\.npganDemoData\["gan"\] = (\{.*\});\n', script, re.S)
    assert m, script[:200]
    assert json.loads(m.group(1))["source"] == "runs/x/epoch_001.npz"
    assert script.isascii()


def test_too_large_a_generator_is_refused():
    model = models.build(models.book_config("gan"))
    with pytest.raises(export.ExportError, match=r"more than the 100,000 allowed"):
        export.export_generator(model, source="x", n_probe=20, max_bytes=100_000)


def test_unknown_layer_is_named():
    class Mystery(npgan.layers.Layer):
        def forward(self, x, train=True):
            return x

    model = models.build(models.book_config("gan"))
    model.sampler.layers.insert(1, Mystery())
    with pytest.raises(export.ExportError, match=r"cannot export a Mystery layer.*npgan-demo\.js"):
        export.export_generator(model, source="x", n_probe=20)
