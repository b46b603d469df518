"""The book's own generators, run in its pages (a local Sphinx extension of this book).

A page shows a widget with a raw HTML block (the widget builds itself inside the div):

    ```{raw} html
    <div class="npgan-demo" data-npgan-demo="gan"></div>
    ```

(data-npgan-switch="<model> …" adds generators of the same input that the widget
switches to; each is exported like the widget's own.)

For each model that a page shows, this extension

1. finds the checkpoint the build's own notebook trained: the notebook glues its
   path, relative to $NPGAN_DATA, under the key "<model>_checkpoint", e.g. in 21.1
   ``glue("gan_checkpoint", f"runs/{run.name}/epoch_{EPOCHS:03d}.npz", display=False)``;
   so a quick build (NPGAN_QUICK=1) exports its quick run and the full book its full one;
2. exports the generator that samples (npgan.export: every layer of model.sampler,
   the average of G's weights where the recipe keeps one; weights as scaled
   integers) into _static/npgan/<model>.js, a classic script that assigns the data
   to window.npganDemoData, so that the page works from file:// too (no fetch());
3. adds that script, _static/npgan/npgan-demo.js (the hand-written forward pass and
   widgets, from _ext/) and npgan-demo.css to that page alone.

Nothing of it is committed: the data scripts exist only in the build. A problem (no
checkpoint recorded, a missing file, a layer the page cannot run) is a warning,
which fails the book's -W build.
"""

import ast
import os
import re
from pathlib import Path

from docutils import nodes
from sphinx.util import logging

LOGGER = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
ASSETS = ("npgan-demo.js", "npgan-demo.css")
STATIC = "npgan"                                   # folder under the build's _static
WIDGET = re.compile(r"""data-npgan-demo\s*=\s*["']([A-Za-z0-9_-]+)["']""")
# more generators one widget switches to (21.7: InfoGAN without labels and with them)
SWITCH = re.compile(r"""data-npgan-switch\s*=\s*["']([A-Za-z0-9_ -]+)["']""")
GLUE_SUFFIX = "_checkpoint"


def widget_models(doctree):
    """Names of the models whose widgets a page holds, in page order (a widget's own,
    then those it switches to: data-npgan-switch="<model> …")."""
    names = []
    for node in doctree.findall(nodes.raw):
        if "html" in node.get("format", "").split():
            for tag in re.findall(r"<[^>]*data-npgan-demo[^>]*>", node.astext()):
                found = WIDGET.findall(tag) + [n for group in SWITCH.findall(tag) for n in group.split()]
                names += [n for n in found if n not in names]
    return names


def recorded_checkpoints(env):
    """{model: (notebook, checkpoint relative to $NPGAN_DATA)} from the notebooks' glue."""
    from myst_nb.ext.glue.crossref import read_glue_cache

    found = {}
    for doc in sorted(env.found_docs):
        for key, output in read_glue_cache(env.mystnb_config.output_folder, doc).items():
            text = output.get("data", {}).get("text/plain")
            if key.endswith(GLUE_SUFFIX) and text:
                try:
                    value = ast.literal_eval(text)   # glue keeps the repr of the string
                except (ValueError, SyntaxError):
                    value = text
                found[key[:-len(GLUE_SUFFIX)]] = (doc, str(value))
    return found


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class Exports:
    """What this build has written: model → True (exported) or False (failed)."""

    def __init__(self, app):
        self.app, self.done, self.checkpoints, self.assets = app, {}, None, False

    def static(self):
        return Path(self.app.outdir) / "_static" / STATIC

    def copy_assets(self):
        if not self.assets:
            for name in ASSETS:
                _write(self.static() / name, (HERE / name).read_bytes())
            self.assets = True

    def export(self, name, pagename):
        if name in self.done:
            return self.done[name]
        from npgan import checkpoint, export
        from npgan.data import data_dir

        if self.checkpoints is None:
            self.checkpoints = recorded_checkpoints(self.app.env)
        self.done[name] = False
        if name not in self.checkpoints:
            LOGGER.warning(f"npgan demo: no notebook records the checkpoint of {name!r} (glue key "
                           f"{name}{GLUE_SUFFIX!r}, a path relative to $NPGAN_DATA); the widget "
                           "cannot run", location=pagename)
            return False
        notebook, relative = self.checkpoints[name]
        try:
            model, meta = checkpoint.load(data_dir() / relative)
            data = export.export_generator(model, source=relative, epoch=meta.get("epoch"), name=name)
        except (checkpoint.CheckpointError, export.ExportError) as err:
            LOGGER.warning(f"npgan demo: {name} (checkpoint recorded by {notebook}): {err}",
                           location=pagename)
            return False
        script = export.data_script(data).encode("utf-8")
        _write(self.static() / f"{name}.js", script)
        LOGGER.info(f"npgan demo: {name} from {relative}: {len(script):,} bytes, "
                    f"{data['bits']} bits per weight, probe error {data['probeError']} grey levels")
        self.done[name] = True
        return True


def add_widget_scripts(app, pagename, templatename, context, doctree):
    if doctree is None or app.builder.format != "html":
        return
    names = widget_models(doctree)
    if not names:
        return
    exports = app.npgan_demo_exports
    exports.copy_assets()
    # deferred, and before MathJax (priority 500), so that the first images do not wait
    # for a page's formulas to be typeset
    for name in names:
        if exports.export(name, pagename):
            app.add_js_file(f"{STATIC}/{name}.js", priority=400, loading_method="defer")
    app.add_js_file(f"{STATIC}/npgan-demo.js", priority=401, loading_method="defer")
    app.add_css_file(f"{STATIC}/npgan-demo.css")


def start(app):
    app.npgan_demo_exports = Exports(app)


def setup(app):
    app.setup_extension("myst_nb")
    app.connect("builder-inited", start)
    app.connect("html-page-context", add_widget_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": False}
