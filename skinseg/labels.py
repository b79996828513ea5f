"""What a mask's values mean: the class ids, the value a loss must ignore,
the mask's dtype, and each value's colour and name (the legend).

Shared by what writes masks and previews (outputs.py), what describes them
(build.json, the dataset card, the report) and the build's plan (does the
class list fit?).  Pure functions; imports nothing heavy.
"""

from __future__ import annotations

import colorsys

# The ignore value of the train-ready layout's masks: 255 (the VOC and
# Ultralytics convention) in 8-bit masks; 65535 in 16-bit ones, where 255 is
# a class.
IGNORE_UINT8, IGNORE_UINT16 = 255, 65535
IGNORE_COLOR = (128, 128, 128)       # BGR of the ignore band in previews

# Kelly's colours of maximum contrast, without white and black (black is
# "not skin"): fixed, so a class keeps its colour across builds and machines.
_KELLY_HEX = (
    "F3C300", "875692", "F38400", "A1CAF1", "BE0032", "C2B280", "848482", "008856", "E68FAC", "0067A5",
    "F99379", "604E97", "F6A600", "B3446C", "DCD300", "882D17", "8DB600", "654522", "E25822", "2B3D26",
)
_GOLDEN = 0.618033988749895


def class_color(class_id: int) -> tuple[int, int, int]:
    """BGR preview colour of a class id; id 0 (not skin) is black."""
    if class_id <= 0:
        return (0, 0, 0)
    if class_id <= len(_KELLY_HEX):
        h = _KELLY_HEX[class_id - 1]
        r, g, b = int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
        return (b, g, r)
    # Beyond the fixed list: golden-ratio hue steps, alternating brightness.
    k = class_id - len(_KELLY_HEX)
    hue = (k * _GOLDEN) % 1.0
    value = 0.95 if k % 2 else 0.7
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, value)
    return (int(b * 255), int(g * 255), int(r * 255))


def ignore_index(layout: str, dtype: str) -> int:
    """The mask value a loss must ignore: 0 (not skin) in the original layout,
    the edge band's value in the train-ready one."""
    if layout == "original":
        return 0
    return IGNORE_UINT8 if dtype == "uint8" else IGNORE_UINT16


def max_classes(layout: str, dtype: str) -> int:
    """The most class ids a mask of dtype holds (the ignore value is not one)."""
    top = 255 if dtype == "uint8" else 65535
    return top if layout == "original" else top - 1


def mask_dtype(class_count: int, layout: str) -> str:
    """uint8 while the class ids (and the ignore value) fit, else uint16."""
    return "uint8" if class_count <= max_classes(layout, "uint8") else "uint16"


def legend_rows(class_names: list[str], layout: str, dtype: str) -> list[tuple[str, str, tuple[int, int, int]]]:
    """(mask value, meaning, BGR colour) of every value a mask holds."""
    if layout == "original":
        rows = [("0", "background / not skin (ignored)", (0, 0, 0))]
    else:
        rows = [("0", "background / not skin (a class)", (0, 0, 0))]
    rows += [(str(i), name, class_color(i)) for i, name in enumerate(class_names, start=1)]
    if layout != "original":
        rows.append((str(ignore_index(layout, dtype)), "ignore: edge band, no loss", IGNORE_COLOR))
    return rows
