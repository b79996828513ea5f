"""The command line's options, as config.py's fields.

Each configuration field names its option (`checks.option_metadata`); this
module turns options given by name into the configuration
(`from_options`: the CLI's whole translation, options not given left to the
library's defaults and the method's presets), and tells the CLI what each
option's check and default are, for its --help.

Imports nothing but the standard library.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Mapping

from .checks import Check, Optional_
from .config import (
    DEFAULT_DESTINATION,
    DEFAULT_METHOD,
    DEFAULT_SOURCE,
    METHOD_PRESETS,
    BuildConfig,
    CleanupParams,
    FaceParams,
    InputParams,
    OutputParams,
    PipelineConfig,
    SkinParams,
)

_PARTS = (FaceParams, SkinParams, CleanupParams, OutputParams, PipelineConfig, InputParams, BuildConfig)


# The options of fields the API requires: the command line's defaults.
_UNSET_DEFAULTS = {"--src": DEFAULT_SOURCE, "--dst": DEFAULT_DESTINATION}


def option_fields() -> dict[str, tuple[type, str]]:
    """Every command-line option of a build -> (the dataclass, its field)."""
    return {f.metadata["option"]: (part, f.name) for part in _PARTS for f in fields(part)
            if f.metadata.get("option")}


def option_check(option: str) -> Check:
    """The check of an option's field (the CLI shows its range or choices)."""
    part, name = option_fields()[option]
    check = next(f.metadata["check"] for f in fields(part) if f.name == name)
    return check.inner if isinstance(check, Optional_) else check


def option_default(option: str) -> Any:
    """What an option is when it is not given, for the CLI's --help: the
    field's default, or the default method's preset."""
    if option in _UNSET_DEFAULTS:
        return _UNSET_DEFAULTS[option]
    part, name = option_fields()[option]
    value = next(f.default for f in fields(part) if f.name == name)
    if value is None and hasattr(METHOD_PRESETS[DEFAULT_METHOD], name):
        return getattr(METHOD_PRESETS[DEFAULT_METHOD], name)
    return value


def from_options(options: Mapping[str, Any], **settings: Any) -> BuildConfig:
    """The BuildConfig of command-line options, by name (``{"--kernel-size":
    3}``); options not given take their defaults and the method's presets,
    as in the API.  `settings`: BuildConfig fields without an option
    (``progress``).  Raises ConfigError for a value that cannot be used, and
    KeyError for an unknown option."""
    known = option_fields()
    values: dict[type, dict[str, Any]] = {part: {} for part in _PARTS}
    for option, value in options.items():
        part, name = known[option]
        values[part][name] = value
    build = values[BuildConfig]
    for option, value in _UNSET_DEFAULTS.items():
        build.setdefault(known[option][1], value)
    pipeline = PipelineConfig(face=FaceParams(**values[FaceParams]), skin=SkinParams(**values[SkinParams]),
                              cleanup=CleanupParams(**values[CleanupParams]),
                              output=OutputParams(**values[OutputParams]), **values[PipelineConfig])
    return BuildConfig(pipeline=pipeline, input=InputParams(**values[InputParams]), **build, **settings)

