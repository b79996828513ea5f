"""The command line's options, as config.py's fields.

Each configuration field names its option (`checks.option_metadata`); this
module turns options given by name into the configuration
(`from_options`, `pipeline_from_options`: the CLI's whole translation,
options not given left to the library's defaults and the method's presets),
tells the CLI what each option's check and default are, for its --help, and
reads options from elsewhere: a TOML file (`read_option_file`, --config)
and a previous build's build.json (`options_like`, --like).

Imports nothing but the standard library (and buildinfo, which reads build.json).
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, Collection, Mapping

from .buildinfo import BuildInfoError, read_build_info_file
from .checks import Check, ConfigError, Optional_
from .config import (
    DEFAULT_DESTINATION,
    DEFAULT_METHOD,
    DEFAULT_SOURCE,
    METHOD_PRESETS,
    BuildConfig,
    CleanupParams,
    FaceParams,
    MethodPreset,
    OutputParams,
    PipelineConfig,
    SkinParams,
)
from .layout import BUILD_JSON
from .splits import InputParams

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


def _by_part(options: Mapping[str, Any]) -> dict[type, dict[str, Any]]:
    known = option_fields()
    values: dict[type, dict[str, Any]] = {part: {} for part in _PARTS}
    for option, value in options.items():
        part, name = known[option]
        values[part][name] = value
    return values


def _pipeline(values: dict[type, dict[str, Any]]) -> PipelineConfig:
    return PipelineConfig(face=FaceParams(**values[FaceParams]), skin=SkinParams(**values[SkinParams]),
                          cleanup=CleanupParams(**values[CleanupParams]),
                          output=OutputParams(**values[OutputParams]), **values[PipelineConfig])


def pipeline_from_options(options: Mapping[str, Any]) -> PipelineConfig:
    """The PipelineConfig of command-line options, by name (`skinseg
    segment`'s: a build's options that decide an image's files); options
    not given take their defaults and the method's presets.  Raises
    ConfigError for a value that cannot be used, KeyError for an unknown
    option or one that is not the pipeline's."""
    values = _by_part(options)
    others = [option for option, (part, _) in option_fields().items() if option in options and
              part not in (FaceParams, SkinParams, CleanupParams, OutputParams, PipelineConfig)]
    if others:
        raise KeyError(f"not options of an image's pipeline: {', '.join(others)}")
    return _pipeline(values)


def from_options(options: Mapping[str, Any], **settings: Any) -> BuildConfig:
    """The BuildConfig of command-line options, by name (``{"--kernel-size":
    3}``); options not given take their defaults and the method's presets,
    as in the API.  `settings`: BuildConfig fields without an option
    (``progress``).  Raises ConfigError for a value that cannot be used, and
    KeyError for an unknown option."""
    values = _by_part(options)
    build = values[BuildConfig]
    for option, value in _UNSET_DEFAULTS.items():
        build.setdefault(option_fields()[option][1], value)
    return BuildConfig(pipeline=_pipeline(values), input=InputParams(**values[InputParams]), **build, **settings)


# ------------------------------------------------------------------ options from a file

def _load_toml(data: bytes) -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:                                   # a dependency on Python 3.10 (pyproject.toml)
        import tomli as tomllib
    return tomllib.loads(data.decode("utf-8"))


def read_option_file(path: Path, options: Collection[str]) -> dict[str, Any]:
    """The options a TOML file gives (``--config skinseg.toml``), by name:
    its keys are option names without their dashes (``kernel-size = 3``,
    ``face = false`` for --no-face, ``hsv-min = [0, 40, 60]``, ``split-ratio
    = {train = 0.8, val = 0.2}``); `options` are those a key may name.
    Lists become tuples and a table (split-ratio) its (key, value) pairs;
    the values are checked where the command line's are (config.py).

    Raises
    ------
    ConfigError
        The file cannot be read, is not TOML, or has a key that is not an
        option (named, with the closest option)."""
    def refused(problem: str) -> ConfigError:
        return ConfigError("config file", "--config", f"{path}: {problem}")

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise refused(f"cannot be read ({exc.strerror or exc})") from None
    try:
        table = _load_toml(data)
    except UnicodeDecodeError as exc:
        raise refused(f"is not UTF-8 text (byte {exc.start})") from None
    except ValueError as exc:              # tomllib.TOMLDecodeError
        raise refused(f"is not TOML: {exc}") from None
    given: dict[str, Any] = {}
    for key, value in table.items():
        option = f"--{key}"
        if option not in options:
            close = difflib.get_close_matches(option, options, n=1)
            hint = f" (did you mean {close[0][2:]!r}?)" if close else \
                " (keys are options without their dashes, e.g. kernel-size = 3)"
            raise refused(f"{key!r} is not an option{hint}")
        if isinstance(value, list):
            value = tuple(value)
        elif isinstance(value, dict):
            value = tuple(value.items())
        given[option] = value
    return given


# The BuildConfig fields a build.json records, and under which key of its parameters (plan.Prepared.info).
_RECORDED_BUILD = {"src": "src", "classes_file": "classes_file"}
_RECORDED_PARTS = {FaceParams: ("face",), SkinParams: ("skin",), CleanupParams: ("cleanup",),
                   OutputParams: ("output",), PipelineConfig: (), InputParams: ("input",)}
_PRESET_FIELDS = {f.name for f in fields(MethodPreset)}


def options_like(path: Path) -> dict[str, Any]:
    """The options of the build that wrote a build.json (``--like
    dst/build.json``, or its folder), by name: every option that decides the
    dataset (--src, --classes, how the source is read, every option of the
    pipeline); not --dst, --sample nor how it ran (--workers, --shard ...).
    A value equal to its method's preset is left out, so that another
    --method given with it takes its own presets.

    Raises
    ------
    ConfigError
        The file is missing or not a skinseg build.json (the reason)."""
    path = Path(path)
    try:
        info = read_build_info_file(path / BUILD_JSON if path.is_dir() else path)
    except BuildInfoError as exc:
        raise ConfigError("build.json", "--like", str(exc)) from None
    recorded, given = info.parameters, {}
    method = recorded.get("skin", {}).get("method", DEFAULT_METHOD)
    preset = METHOD_PRESETS.get(method, METHOD_PRESETS[DEFAULT_METHOD])
    for option, (part, name) in option_fields().items():
        if part is BuildConfig:
            value = recorded.get(_RECORDED_BUILD.get(name, ""))
        elif part in _RECORDED_PARTS:
            where = recorded
            for key in _RECORDED_PARTS[part]:
                where = where.get(key) if isinstance(where, dict) else None
            value = where.get(name) if isinstance(where, dict) else None
        else:
            continue
        if value is None or (name in _PRESET_FIELDS and value == getattr(preset, name)):
            continue
        given[option] = tuple(value) if isinstance(value, list) else value
    return given

