"""Every model family of the chapter, by name: "gan", "cgan" (gan.py),
"infogan" (infogan.py), "dcgan" (dcgan.py), "wgan" (wgan.py).

A family registers its config class, its model class and the book's recipe
here; checkpoints store the name, so that ``checkpoint.load`` and the CLI can
rebuild any model without knowing the families themselves.
"""

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Family:
    name: str
    config_class: type
    model_class: type
    book_config: Callable   # () → the book's config of this family
    book_epochs: int


# Filled as the family modules are imported (npgan/__init__.py imports them all,
# and Python runs it before any submodule such as this one).
FAMILIES = {}
BOOK_EPOCHS = {}   # name → epochs of the book's run
# Both in the chapter's reading order (21.1–21.4), whatever order the modules load
# in (infogan.py imports dcgan.py for its conv nets); a family not listed goes last.
READING_ORDER = ("gan", "cgan", "wgan", "infogan", "dcgan")


def register(name, config_class, model_class, book_config, book_epochs):
    FAMILIES[name] = Family(name, config_class, model_class, book_config, book_epochs)
    rank = {n: i for i, n in enumerate(READING_ORDER)}
    ordered = sorted(FAMILIES.values(), key=lambda fam: rank.get(fam.name, len(rank)))
    FAMILIES.clear()
    FAMILIES.update((fam.name, fam) for fam in ordered)
    BOOK_EPOCHS.clear()   # derived from FAMILIES, in the same order
    BOOK_EPOCHS.update((fam.name, fam.book_epochs) for fam in ordered)


def family(name):
    if name not in FAMILIES:
        raise ValueError(f"unknown model {name!r}: use one of {', '.join(sorted(FAMILIES))}")
    return FAMILIES[name]


def names():
    return tuple(FAMILIES)


def build(config, seed=0):
    """The model that ``config`` describes (its family is the config's class;
    GAN vs CGAN by n_classes)."""
    for fam in FAMILIES.values():
        if type(config) is fam.config_class and fam.model_class.accepts(config):
            return fam.model_class(config, seed)
    raise ValueError(f"no model family takes a {type(config).__name__} like {config}")


def book_config(name="gan"):
    """The book's recipe for model ``name``: a fresh config object."""
    return family(name).book_config()
