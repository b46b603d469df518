"""Checks of a config's fields, each with a message that names the field, says
what it must be and shows what it was: ``GANConfig(latent_dim="100")`` is a
TypeError and ``beta1=1`` a ValueError at once, not a ZeroDivisionError many
steps later.

``GANConfig.validate`` uses these helpers; a config class that adds fields
checks them with the same helpers after ``super().validate()``. Numbers are
normalised to Python's int and float (NumPy scalars would not go into JSON).
"""

import math
import numbers


def _field(config, name):
    return f"{type(config).__name__}.{name}"


def _shown(value):
    return f"{value!r} (a {type(value).__name__})"


def _interval(low, high, low_open, high_open):
    if high is None:
        return f"{'>' if low_open else '≥'} {low}"
    if low is None:
        return f"{'<' if high_open else '≤'} {high}"
    return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


def whole_number(config, name, low=None, high=None):
    """``config.name`` must be an int (not a bool, not a string) in [low, high]."""
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{_field(config, name)} must be a whole number, got {_shown(value)}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{_field(config, name)} must be a whole number "
                         f"{_interval(low, high, False, False)}, got {value}")
    setattr(config, name, value)


def real_number(config, name, low=None, high=None, low_open=False, high_open=False):
    """``config.name`` must be a finite real number in the interval given
    (``low_open``/``high_open``: that end excluded)."""
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{_field(config, name)} must be a number, got {_shown(value)}")
    value = float(value)
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if not math.isfinite(value) or below or above:
        raise ValueError(f"{_field(config, name)} must be a finite number "
                         f"{_interval(low, high, low_open, high_open)}, got {value}")
    setattr(config, name, value)


def one_of(config, name, options):
    """``config.name`` must be one of the strings ``options``."""
    value = getattr(config, name)
    if not isinstance(value, str):
        raise TypeError(f"{_field(config, name)} must be one of {', '.join(map(repr, options))}, "
                        f"got {_shown(value)}")
    if value not in options:
        raise ValueError(f"{_field(config, name)} must be one of {', '.join(map(repr, options))}, "
                         f"got {value!r}")


def sizes(config, name, low=1, high=None):
    """``config.name`` must be a tuple (or list) of whole numbers, each ≥ ``low``."""
    value = getattr(config, name)
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"{_field(config, name)} must be a tuple of whole numbers such as (256, 512), "
                        f"got {_shown(value)}")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, numbers.Integral) or not (
                low <= item and (high is None or item <= high)):
            raise ValueError(f"{_field(config, name)} must hold whole numbers "
                             f"{_interval(low, high, False, False)}, got {tuple(value)!r}")
    setattr(config, name, tuple(int(item) for item in value))


def flag(config, name):
    """``config.name`` must be True or False."""
    value = getattr(config, name)
    if not isinstance(value, bool):
        raise TypeError(f"{_field(config, name)} must be True or False, got {_shown(value)}")
