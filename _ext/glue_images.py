"""Make images glued across documents appear (a local Sphinx extension of this book).

A markdown page may show a figure that a notebook glued:

    ```{glue} gan_curves
    :doc: ../notebooks/21.2-gan-mnist.ipynb
    ```

myst-nb (1.4) resolves such a reference late, in a post-transform, and turns an image
into an <img> pointing at _images/<sha256 of the PNG>.png, but it never writes that
file: unless the notebook page happens to display the very same PNG, the reader sees a
broken image (and the build prints no warning). This post-transform runs just before
myst-nb's and writes each such image from the notebook's glue cache to the place the
<img> will point at.
"""

import hashlib
import os
from binascii import a2b_base64
from mimetypes import guess_extension
from pathlib import Path

from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging

from myst_nb.core.render import get_mime_priority
from myst_nb.ext.glue.crossref import ReplacePendingGlueReferences, read_glue_cache
from myst_nb.ext.glue.utils import PendingGlueReference

LOGGER = logging.getLogger(__name__)
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif"}


class WriteGluedImages(SphinxPostTransform):
    default_priority = ReplacePendingGlueReferences.default_priority - 1

    def apply(self, **kwargs):
        builder = self.app.builder
        if builder.format != "html":
            return
        priority = get_mime_priority(builder.name, self.config["nb_mime_priority_overrides"])
        cache_folder = self.env.mystnb_config.output_folder
        for node in list(self.document.findall(PendingGlueReference)):
            if node.gtype == "text":
                continue
            output = read_glue_cache(cache_folder, node.refdoc).get(node.key)
            if not output:
                continue                       # myst-nb itself warns about a missing key
            data = output.get("data", {})
            mime = next((m for m in priority if m in data), None)
            if mime not in IMAGE_TYPES:
                continue
            blob = a2b_base64(data[mime])
            extension = guess_extension(mime) or "." + mime.rsplit("/")[-1]
            extension = ".jpeg" if extension == ".jpe" else extension
            # the same name and folder as myst_nb.ext.glue.crossref.generate_any_nodes
            path = Path(builder.outdir) / builder.imagedir / (
                hashlib.sha256(blob).hexdigest() + extension)
            if path.is_file() and path.stat().st_size == len(blob):
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + f".{os.getpid()}.part")
            tmp.write_bytes(blob)
            os.replace(tmp, path)


def setup(app):
    app.setup_extension("myst_nb")
    app.add_post_transform(WriteGluedImages)
    return {"parallel_read_safe": True, "parallel_write_safe": False}
