"""The checks of config.py's fields, and the error they raise.

Each field of a configuration dataclass carries its command-line option and
a check (`checked`): the check takes a value and returns it normalised (a
float for a number, a tuple for a sequence, a Path for a path) or says
what is wrong with it; `check_fields`, called by each dataclass on
construction, turns that into a `ConfigError` naming the field and its
option.  The command line shows the ranges and choices of these checks in
its --help (cli.shown).

Imports nothing but the standard library.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional, Sequence

Triple = tuple[int, int, int]


class ConfigError(ValueError):
    """A configuration value that cannot be used.

    Attributes
    ----------
    field : str
        The value's name in the API, e.g. ``"CleanupParams.kernel_size"``.
    option : str or None
        Its command-line option, e.g. ``"--kernel-size"`` (None: the API's only).
    problem : str
        What is wrong with it, e.g. ``"-3 is not a whole number from 0 to 101"``.
    """

    def __init__(self, field: str, option: Optional[str], problem: str):
        self.field, self.option, self.problem = field, option, problem
        super().__init__(f"{field} ({option}): {problem}" if option else f"{field}: {problem}")


class _Invalid(Exception):
    """A value a check refuses; str(exc) says why (without the field's name)."""


class Check:
    def __call__(self, value: Any) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Flag(Check):
    def __call__(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise _Invalid(f"{value!r} is not True or False")
        return value


@dataclass(frozen=True)
class Choice(Check):
    values: tuple[str, ...]

    def __call__(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self.values:
            raise _Invalid(f"{value!r} is not one of {', '.join(self.values)}")
        return value


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class Whole(Check):
    """A whole number from `low` to `high` (None: no bound); numpy integers are taken."""

    low: Optional[int] = None
    high: Optional[int] = None

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"a whole number from {self.low} to {self.high}"
        if self.low is not None:
            return f"a whole number of at least {self.low}"
        return "a whole number"

    def __call__(self, value: Any) -> int:
        if not _is_integer(value) or (self.low is not None and value < self.low) or \
                (self.high is not None and value > self.high):
            raise _Invalid(f"{value!r} is not {self.describe()}")
        return int(value)


@dataclass(frozen=True)
class Real(Check):
    """A finite number from `low` to `high` (`low_open`: above `low`); kept as a float."""

    low: float
    high: float
    low_open: bool = False
    unit: str = ""            # "seconds": "a number of seconds ..."
    note: str = ""            # said after the range: "(a day)"

    def describe(self) -> str:
        low = f"above {self.low:g}" if self.low_open else f"from {self.low:g}"
        high = f"and at most {self.high:g}" if self.low_open else f"to {self.high:g}"
        return f"a finite number{' of ' + self.unit if self.unit else ''} {low} {high}{self.note}"

    def __call__(self, value: Any) -> float:
        shown = f"{value:g}" if isinstance(value, numbers.Real) and not isinstance(value, bool) else repr(value)
        # A range check lets nan through (every comparison with it is false),
        # and build.json could not hold it (JSON has no nan).
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value) or \
                not (self.low < value if self.low_open else self.low <= value) or value > self.high:
            raise _Invalid(f"{shown} is not {self.describe()}")
        return float(value)


@dataclass(frozen=True)
class Optional_(Check):
    """None, or a value the inner check takes."""

    inner: Check

    def __call__(self, value: Any) -> Any:
        return None if value is None else self.inner(value)


@dataclass(frozen=True)
class PathValue(Check):
    """A path: a str or an os.PathLike, kept as a Path (`text`: as a str)."""

    text: bool = False

    def __call__(self, value: Any) -> Any:
        path = os.fspath(value) if isinstance(value, (str, os.PathLike)) else None
        if not isinstance(path, str) or not path:
            raise _Invalid(f"{value!r} is not a path (a non-empty str or os.PathLike)")
        return path if self.text else Path(path)


@dataclass(frozen=True)
class ColourBound(Check):
    """Three whole numbers, each from 0 to its channel's limit (OpenCV scales)."""

    limits: tuple[int, int, int]
    channels: str

    def __call__(self, value: Any) -> Triple:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise _Invalid(f"{value!r} is not three whole numbers ({self.channels})")
        if len(value) != 3:
            raise _Invalid(f"{triple_text(value)} has {len(value)} values; give three ({self.channels})")
        for number, limit, channel in zip(value, self.limits, self.channels.split(",")):
            if not _is_integer(number) or not 0 <= number <= limit:
                raise _Invalid(f"{channel}={number!r} is outside 0..{limit} (OpenCV scale)")
        return tuple(int(n) for n in value)


def triple_text(value: Sequence) -> str:
    return ",".join(map(str, value))


def bounds_problem(low: Triple, high: Triple, high_option: str, channels: str, wraps: bool) -> Optional[str]:
    """What is wrong with a colour box whose minimum is above its maximum
    in a channel (the first one excepted if it wraps: hue), or None."""
    for index, (a, b, channel) in enumerate(zip(low, high, channels.split(","))):
        if a > b and not (index == 0 and wraps):
            return (f"{triple_text(low)} is above {high_option} {triple_text(high)} in channel {index + 1} "
                    f"({channel} {a} > {b}): no pixel would be skin")
    return None


@dataclass(frozen=True)
class SplitRatio(Check):
    """(split, share) pairs: split names of `names` (any case; kept in lower
    case), shares above 0 and at most 1 that add up to 1, each split once."""

    names: tuple[str, ...]

    def __call__(self, value: Any) -> tuple[tuple[str, float], ...]:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
            raise _Invalid(f"{value!r} is not a list of (split, share) pairs, e.g. (('train', 0.8), ('val', 0.2))")
        pairs: list[tuple[str, float]] = []
        for pair in value:
            if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2 or \
                    not isinstance(pair[0], str):
                raise _Invalid(f"{pair!r} is not a (split, share) pair, e.g. ('train', 0.8)")
            name, share = pair[0].lower(), pair[1]
            if name not in self.names:
                raise _Invalid(f"{name!r} is not a split name ({', '.join(self.names)})")
            if not isinstance(share, numbers.Real) or isinstance(share, bool) or not math.isfinite(share) or \
                    not 0 < share <= 1:
                raise _Invalid(f"the share of {name} must be above 0 and at most 1, not {share!r}")
            if name in dict(pairs):
                raise _Invalid(f"{name} is given twice")
            pairs.append((name, float(share)))
        total = sum(share for _, share in pairs)
        if abs(total - 1) > 1e-6:
            raise _Invalid(f"the shares add up to {total:g}, not 1")
        return tuple(pairs)


@dataclass(frozen=True)
class Shard(Check):
    """(k, n): part k of n, 1 <= k <= n."""

    def __call__(self, value: Any) -> tuple[int, int]:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2 or \
                not all(_is_integer(v) for v in value):
            raise _Invalid(f"{value!r} is not (K, N), e.g. (2, 8) for the second of eight shards")
        k, n = int(value[0]), int(value[1])
        if not 1 <= k <= n:
            raise _Invalid(f"{k}/{n}: K must be between 1 and N")
        return (k, n)


@dataclass(frozen=True)
class Part(Check):
    """A nested dataclass of the configuration."""

    kind: type

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, self.kind):
            raise _Invalid(f"{value!r} is not a {self.kind.__name__}")
        return value


def option_metadata(option: Optional[str], check: Check) -> dict:
    """A field's metadata: its command-line option and its check."""
    return {"option": option, "check": check}


def part(kind: type) -> Any:
    """A field holding a nested configuration dataclass (its default: kind())."""
    return field(default_factory=kind, metadata=option_metadata(None, Part(kind)))


def checked(default: Any, option: Optional[str], check: Check, **kwargs) -> Any:
    return field(default=default, metadata=option_metadata(option, check), **kwargs)


def check_fields(instance: Any) -> None:
    """Check and normalise every field of a frozen dataclass instance."""
    for f in fields(instance):
        check = f.metadata.get("check")
        if check is None:
            continue
        try:
            value = check(getattr(instance, f.name))
        except _Invalid as exc:
            raise ConfigError(f"{type(instance).__name__}.{f.name}", f.metadata.get("option"), str(exc)) from None
        object.__setattr__(instance, f.name, value)


def fail(instance: Any, name: str, problem: str) -> ConfigError:
    """A ConfigError about field `name` of instance."""
    option = next(f.metadata.get("option") for f in fields(instance) if f.name == name)
    return ConfigError(f"{type(instance).__name__}.{name}", option, problem)
