"""_ext/npgan_demo.py, the Sphinx side of the pages' generator widgets, without a
build: which models a page shows, and which checkpoint each notebook recorded.
(The built pages themselves are checked in chromium by tests/browser/check_demo.py.)"""

import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("myst_nb")
from docutils import nodes  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_ext"))
import npgan_demo  # noqa: E402


def page(*raw_blocks, text="<p>data-npgan-demo=\"not-a-widget\"</p>"):
    doc = nodes.document(None, None)
    doc += nodes.paragraph(text=text)          # prose that mentions the attribute is no widget
    for fmt, html in raw_blocks:
        doc += nodes.raw(html, html, format=fmt)
    return doc


def test_widget_models_in_page_order_once_each():
    doc = page(("html", '<div class="npgan-demo" data-npgan-demo="cgan"></div>'),
               ("html", "<div data-npgan-demo='gan'></div><div data-npgan-demo=\"cgan\"></div>"),
               ("latex", '<div data-npgan-demo="dcgan"></div>'))
    assert npgan_demo.widget_models(doc) == ["cgan", "gan"]
    assert npgan_demo.widget_models(page()) == []


def test_a_widget_switch_adds_the_models_it_switches_to():
    doc = page(("html", '<div class="npgan-demo" data-npgan-demo="infogan" '
                        'data-npgan-switch="infogan_labels100"></div>'),
               ("html", "<div data-npgan-switch='a b' data-npgan-demo='gan'></div>"
                        "<p data-npgan-switch=\"lonely\">no widget</p>"))
    assert npgan_demo.widget_models(doc) == ["infogan", "infogan_labels100", "gan", "a", "b"]


def test_every_widget_model_of_the_pages_has_its_checkpoint_glued_by_a_notebook():
    """The extension exports a widget's generator from the checkpoint a notebook glues
    under "<model>_checkpoint": a page naming a model no notebook glues would fail the build."""
    root = Path(npgan_demo.HERE).parent
    glued = set()
    for notebook in (root / "notebooks").glob("*.ipynb"):
        for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "code":
                glued |= set(re.findall(r"""glue\(\s*["'](\w+)_checkpoint["']""", "".join(cell["source"])))
    shown = {}
    for md in (root / "book").glob("*.md"):
        blocks = re.findall(r"```\{raw\} html\n(.*?)```", md.read_text(encoding="utf-8"), flags=re.S)
        for html in blocks:
            for name in npgan_demo.widget_models(page(("html", html))):
                shown[name] = md.name
    assert {"infogan", "infogan_labels100"} <= set(shown), shown
    missing = {name: where for name, where in shown.items() if name not in glued}
    assert not missing, f"no notebook glues <model>_checkpoint for {missing}"


def glue_file(folder, doc, entries):
    path = folder.joinpath(*doc.split("/")).with_name(doc.split("/")[-1] + ".glue.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({key: {"data": {"text/plain": value}, "output_type": "display_data"}
                                for key, value in entries.items()}))


def test_recorded_checkpoints_come_from_the_notebooks_glue(tmp_path):
    glue_file(tmp_path, "notebooks/21.2-gan-mnist", {
        "gan_checkpoint": "'runs/book-gan/epoch_060.npz'", "gan_epochs": "60"})
    glue_file(tmp_path, "notebooks/21.3-cgan-mnist", {
        "cgan_checkpoint": "'runs/book-cgan-subset3200/epoch_002.npz'"})
    env = SimpleNamespace(found_docs={"notebooks/21.2-gan-mnist", "notebooks/21.3-cgan-mnist",
                                      "book/21.1-principles"},
                          mystnb_config=SimpleNamespace(output_folder=str(tmp_path)))
    assert npgan_demo.recorded_checkpoints(env) == {
        "gan": ("notebooks/21.2-gan-mnist", "runs/book-gan/epoch_060.npz"),
        "cgan": ("notebooks/21.3-cgan-mnist", "runs/book-cgan-subset3200/epoch_002.npz")}


def test_the_page_script_knows_every_layer_type_the_exporter_writes():
    from npgan import export

    script = (Path(npgan_demo.HERE) / "npgan-demo.js").read_text(encoding="utf-8")
    layers = script[script.index("const LAYERS = {"):script.index("const decoded = {};")]
    known = set(re.findall(r"^    (\w+)\(spec", layers, flags=re.M))
    written = set()
    for layer_class, function in export.EXPORTERS.items():
        spec = function(_sample(layer_class))
        if spec is not None:
            written.add(spec["type"])
    assert written <= known, f"npgan-demo.js cannot run {sorted(written - known)}"


def _sample(layer_class):
    """A small instance of an exportable layer class."""
    import numpy as np
    from npgan import batchnorm, conv, layers

    rng = np.random.default_rng(0)
    makers = {layers.Linear: lambda: layers.Linear(3, 2, rng),
              layers.LeakyReLU: lambda: layers.LeakyReLU(0.2),
              layers.Dropout: lambda: layers.Dropout(0.5, rng),
              conv.Reshape: lambda: conv.Reshape(1, 2, 2),
              batchnorm.BatchNorm: lambda: batchnorm.BatchNorm(2),
              conv.ConvTranspose2d: lambda: conv.ConvTranspose2d(2, 1, 4, 2, 1, rng)}
    return makers.get(layer_class, layer_class)()
