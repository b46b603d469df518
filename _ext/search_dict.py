"""Find the jieba user dictionary of the Chinese search wherever the build is started.

Sphinx hands ``html_search_options['dict']`` to jieba as it is, so a relative path is
taken from the current directory, and a wrong path is ignored without a word: the
search index then lacks terms such as 判别器. This extension reads a relative path from
the book's root (where _config.yml is) and stops the build if the file is missing.
"""

from pathlib import Path

from sphinx.errors import ConfigError


def resolve_dict(app, config):
    options = dict(config.html_search_options or {})
    path = options.get("dict")
    if not path:
        return
    path = Path(path)
    if not path.is_absolute():
        path = Path(app.confdir) / path
    if not path.is_file():
        raise ConfigError(f"html_search_options.dict: no jieba dictionary at {path}; "
                          "fix the path in _config.yml (relative to the book's root)")
    options["dict"] = str(path)
    config.html_search_options = options


def setup(app):
    app.connect("config-inited", resolve_dict)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
