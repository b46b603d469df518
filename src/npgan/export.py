"""A trained generator as a compact script for the book's pages (the widgets of
21.1 and 21.2: "在书页里玩生成器").

``export_generator`` walks ``model.sampler.layers`` and describes each layer by a small
dict that the page's JavaScript (_ext/npgan-demo.js) knows how to run; every
weight tensor is stored as scaled integers, one scale per output unit/channel:

    w ≈ scale_j · q,   q an integer in [−(2^(b−1) − 1), 2^(b−1) − 1],
    scale_j = max_i |w_ij| / (2^(b−1) − 1)

with ``b`` bits per weight, packed into a little-endian bit stream, written as
base-85 text. The number of
bits is the smallest (from 8) for which G's images, on a probe batch of inputs,
move by at most half a grey level from those of the float32 weights, so that
the page's pictures and npgan's ``to_uint8(G(x))`` differ by one grey level at
most (the first bit that matters for MNIST's generators is about the 11th or
12th: 8 bits move some pixels by 7 grey levels). Biases and batch-norm
statistics stay float32.

A new layer type is supported by one function here, registered with
``@exporter(LayerClass)``, and its forward pass in npgan-demo.js under the same
"type" name (as the DCGAN's Reshape, BatchNorm and ConvTranspose2d are).
"""

import base64
import json

import numpy as np

from . import batchnorm, conv, layers

FORMAT = "npgan-demo-1"
MAX_BYTES = 1_500_000          # per model (the budget)
BITS = range(8, 17)            # tried in this order
MAX_ERROR = 0.5                # grey levels (of 255), before rounding, on the probe batch
CONT_RANGE = (-2.0, 2.0)       # the widgets' sliders for continuous codes (InfoGAN's c2, c3)


class ExportError(ValueError):
    """A generator the page script cannot run, or one too large for the page."""


# ---------------------------------------------------------------- encodings

def text_of(data):
    """Bytes as text for a JS string: base 85 (RFC 1924's alphabet, Python's b85encode:
    4 bytes → 5 characters, none of them a quote or a backslash), 6 % shorter than base64."""
    return base64.b85encode(bytes(data)).decode("ascii")


def float32_text(array):
    """float32 little-endian bytes as text: biases, scales, batch-norm statistics."""
    return text_of(np.asarray(array, dtype="<f4").tobytes())


def quantize(weights, axis, bits):
    """(integers, scales): weights ≈ integers · scales, one scale per index of ``axis``."""
    w = np.asarray(weights, dtype=np.float32)
    top = 2 ** (bits - 1) - 1
    other = tuple(a for a in range(w.ndim) if a != axis)
    scales = (np.abs(w).max(axis=other, keepdims=True) / np.float32(top)).astype(np.float32)
    scales[scales == 0] = 1          # an all-zero unit: any scale will do
    ints = np.clip(np.rint(w / scales), -top, top).astype(np.int32)
    return ints, scales.reshape(-1)


def dequantize(ints, scales, axis):
    """float32 weights from ``quantize``'s output (what the page computes)."""
    shape = [1] * ints.ndim
    shape[axis] = -1
    return ints.astype(np.float32) * scales.reshape(shape)


def pack_bits(values, bits):
    """Non-negative integers < 2^bits → bytes: value k occupies bits
    [k·bits, (k+1)·bits) of a little-endian bit stream (bit 0 = lowest bit of byte 0)."""
    values = np.asarray(values, dtype=np.uint32).reshape(-1)
    bit_matrix = (values[:, None] >> np.arange(bits, dtype=np.uint32)) & 1
    return np.packbits(bit_matrix.astype(np.uint8).reshape(-1), bitorder="little").tobytes()


def unpack_bits(data, bits, count):
    """The inverse of ``pack_bits``."""
    stream = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
    chunks = stream[:count * bits].reshape(count, bits).astype(np.uint32)
    return (chunks << np.arange(bits, dtype=np.uint32)).sum(axis=1, dtype=np.uint32)


class Tensor:
    """A layer's weight tensor ``layer.<name>``, quantized when the export is written."""

    def __init__(self, layer, name, axis):
        self.layer, self.name, self.axis = layer, name, axis
        self.array = np.array(getattr(layer, name), dtype=np.float32)

    def encode(self, bits):
        ints, scales = quantize(self.array, self.axis, bits)
        top = 2 ** (bits - 1) - 1
        return {"shape": list(self.array.shape), "axis": self.axis, "bits": bits,
                "scale": float32_text(scales),
                "q": text_of(pack_bits(ints + top, bits))}

    def decoded(self, bits):
        ints, scales = quantize(self.array, self.axis, bits)
        return dequantize(ints, scales, self.axis)


# ---------------------------------------------------------------- layers

EXPORTERS = {}   # layer class → function(layer) → spec dict (Tensors inside), or None to skip


def exporter(layer_class):
    def register(function):
        EXPORTERS[layer_class] = function
        return function
    return register


@exporter(layers.Linear)
def _linear(layer):
    # y = x W + b (eq-linear); W (n_in, n_out), one scale per output unit
    return {"type": "linear", "nIn": layer.W.shape[0], "nOut": layer.W.shape[1],
            "W": Tensor(layer, "W", axis=1), "b": float32_text(layer.b)}


@exporter(layers.ReLU)
def _relu(layer):
    return {"type": "leaky_relu", "slope": 0.0}


@exporter(layers.LeakyReLU)
def _leaky_relu(layer):
    return {"type": "leaky_relu", "slope": float(layer.slope)}


@exporter(layers.Tanh)
def _tanh(layer):
    return {"type": "tanh"}


@exporter(layers.Sigmoid)
def _sigmoid(layer):
    return {"type": "sigmoid"}


@exporter(layers.Dropout)
def _dropout(layer):
    return None   # the identity when not training


# ---- the DCGAN's generator (conv.py): Linear → Reshape → BatchNorm → ReLU → ConvTranspose2d …

@exporter(conv.Reshape)
def _reshape(layer):
    return {"type": "reshape", "shape": list(layer.shape)}


@exporter(conv.Flatten)
def _flatten(layer):
    return {"type": "reshape", "shape": [-1]}


@exporter(batchnorm.BatchNorm)
def _batch_norm(layer):
    # evaluation mode, as G(x) runs it: y = x·scale + shift per channel, with
    # scale = γ / sqrt(running_var + ε) and shift = β − running_mean·scale (float32,
    # computed as batchnorm.BatchNorm.forward computes them)
    dt = layer.gamma.dtype
    scale = layer.gamma / np.sqrt(layer.running_var + dt.type(layer.eps))
    shift = layer.beta - layer.running_mean * scale
    return {"type": "affine", "scale": float32_text(scale), "shift": float32_text(shift)}


@exporter(conv.ConvTranspose2d)
def _conv_transpose2d(layer):
    # W (C_in, C_out, k, k): one scale per output channel
    return {"type": "conv_transpose2d", "cIn": layer.W.shape[0], "cOut": layer.W.shape[1],
            "k": layer.k, "stride": layer.stride, "padding": layer.padding,
            "W": Tensor(layer, "W", axis=1), "b": float32_text(layer.b)}


def _layer_specs(net):
    specs = []
    for layer in net.layers:
        function = next((f for cls, f in EXPORTERS.items() if type(layer) is cls), None)
        if function is None:
            raise ExportError(f"cannot export a {type(layer).__name__} layer for the book's pages: "
                              f"register an exporter for it in npgan/export.py and its forward "
                              f"pass in _ext/npgan-demo.js")
        spec = function(layer)
        if spec is not None:
            specs.append(spec)
    return specs


def _encoded(specs, bits):
    return [{k: (v.encode(bits) if isinstance(v, Tensor) else v) for k, v in spec.items()}
            for spec in specs]


def _with_weights(net, specs, bits):
    """Put every Tensor's quantized value into ``net``'s weights; returns a copy of
    the original flat vector, to be put back."""
    original = net.flat_params.copy()
    for spec in specs:
        for tensor in spec.values():
            if isinstance(tensor, Tensor):
                getattr(tensor.layer, tensor.name)[...] = tensor.decoded(bits)
    return original


# ---------------------------------------------------------------- G's input

def input_layout(model):
    """The parts of G's input vector, in order: z, then a CGAN's one-hot label,
    or InfoGAN's one-hot c1 and continuous codes."""
    c = model.config
    # z's prior, times InfoGAN's z_std where the config has one
    parts = [{"part": "z", "size": c.latent_dim, "noise": c.noise,
              "scale": float(getattr(c, "z_std", 1.0))}]
    if getattr(c, "n_classes", 0):
        parts.append({"part": "label", "size": c.n_classes})
    if getattr(c, "n_cat", 0):
        parts.append({"part": "cat", "size": c.n_cat})
    if getattr(c, "n_cont", 0):
        parts.append({"part": "cont", "size": c.n_cont, "range": list(CONT_RANGE)})
    return parts


def input_size(model):
    return sum(part["size"] for part in input_layout(model))


def probe_inputs(model, n, seed=0):
    """n inputs for G spread over what the widgets can ask for: z from its prior,
    one-hot parts uniform over their values, continuous codes over CONT_RANGE."""
    rng = np.random.default_rng(seed)
    columns = []
    for part in input_layout(model):
        size = part["size"]
        if part["part"] == "z":
            columns.append(part["scale"] * (rng.standard_normal((n, size)) if part["noise"] == "normal"
                                            else rng.uniform(-1, 1, (n, size))))
        elif part["part"] == "cont":
            columns.append(rng.uniform(*part["range"], (n, size)))
        else:
            columns.append(np.eye(size)[rng.integers(0, size, n)])
    return np.hstack(columns).astype(model.sampler.dtype)


# ---------------------------------------------------------------- export

def grey_error(model, specs, bits, x, exact=None):
    """Largest |G_quantized(x) − G(x)| over the probe batch, in grey levels of 255."""
    exact = model.sampler(x) if exact is None else exact
    original = _with_weights(model.sampler, specs, bits)
    try:
        approx = model.sampler(x)
    finally:
        model.sampler.flat_params[...] = original
    return float(np.abs(approx - exact).max() * 127.5)


def export_generator(model, source, epoch=None, n_probe=1000, max_bytes=MAX_BYTES, name=None):
    """The page data of ``model``'s generator: a JSON-ready dict (see the module doc).
    ``source``: the checkpoint it came from, relative to $NPGAN_DATA. ``name``: the
    widget's model name (default model.name); two generators of one family on a page,
    such as an unsupervised and a semi-supervised InfoGAN, need names of their own."""
    specs = _layer_specs(model.sampler)
    layout = input_layout(model)
    first = next((s for s in specs if "nIn" in s), None)
    if first is not None and first["nIn"] != sum(p["size"] for p in layout):
        raise ExportError(f"{model.name}: G's first layer takes {first['nIn']} numbers, but the "
                          f"config describes an input of {sum(p['size'] for p in layout)} ({layout})")
    x = probe_inputs(model, n_probe)
    exact = model.sampler(x)
    for bits in BITS:
        error = grey_error(model, specs, bits, x, exact)
        if error <= MAX_ERROR:
            break
    else:
        raise ExportError(f"{model.name}: even {bits}-bit weights move G's images by {error:.2f} "
                          f"grey levels (at most {MAX_ERROR} allowed)")
    data = {"format": FORMAT, "name": name or model.name, "source": str(source), "epoch": epoch,
            "input": layout, "inputSize": sum(p["size"] for p in layout), "bits": bits,
            "probeError": round(error, 4), "layers": _encoded(specs, bits)}
    if hasattr(model.config, "n_labels"):   # InfoGAN: the widget's switch names it by its labels
        data["nLabels"] = int(model.config.n_labels)
    size = len(data_script(data).encode("utf-8"))
    if size > max_bytes:
        raise ExportError(f"{model.name}: the exported generator takes {size:,} bytes at {bits} bits "
                          f"per weight, more than the {max_bytes:,} allowed for a page")
    return data


def data_script(data):
    """The classic script that hands ``data`` to the page (works from file:// too)."""
    return ("window.npganDemoData = window.npganDemoData || {};\n"
            f"window.npganDemoData[{json.dumps(data['name'])}] = "
            + json.dumps(data, separators=(",", ":"), ensure_ascii=True) + ";\n")
