"""How build.json's `data_checks` (datachecks.assess) are shown: report.html's
section on duplicates and photo quality (tables, photos in two splits first)
and the summary's lines (`summary_lines`).

Lists are capped like the rest of the page (LISTED groups or photos each;
build.json has them all), and only the first THUMBNAILS photos get a
thumbnail (the report draws them as it draws the suspects'), so the page and
its cost stay small at any size.
"""

from __future__ import annotations

import html
from typing import Optional
from urllib.parse import quote

from .buildinfo import ACROSS_CLASSES, ACROSS_SPLITS, QUALITY_FLAGS, WHERE, WITHIN_CLASS, DataChecks, DuplicateGroup
from .names import printable

SECTION_ID = "data-checks"
LISTED = 100            # groups (or flagged photos) listed by name, each kind
THUMBNAILS = 24         # photos of the section with a thumbnail, at most
PER_GROUP = 3           # of those, per duplicate group

HEADINGS = {
    ACROSS_SPLITS: ("in more than one split", "they inflate test scores: the model is scored on photos it was trained "
                    "on. Keep each photo in one split."),
    ACROSS_CLASSES: ("in more than one class", "one photo with two labels: keep it in the class it belongs to."),
    WITHIN_CLASS: ("more than once in one class", "the copies weigh the photo more in training."),
}
FLAG_HEADINGS = {"blurry": "very blurry", "dark": "very dark", "overexposed": "over-exposed"}


def _e(value: object) -> str:
    return html.escape(printable(str(value)), quote=True)


def _n(thresholds: dict, key: str, spec: str = "g") -> str:
    """A threshold as build.json holds it ("?" if a hand-edited file lacks it)."""
    value = thresholds.get(key)
    return "?" if value is None else format(value, spec)


def thumbnail_sources(checks: Optional[DataChecks]) -> list[str]:
    """The sources whose thumbnails the section shows, in the page's order:
    a few of each duplicate group (across splits first), then of each flag."""
    if checks is None:
        return []
    chosen: list[str] = []
    for group in checks.duplicates:
        chosen += [i.source for i in group.images[:PER_GROUP] if i.source not in chosen]
    per_flag = max(1, THUMBNAILS // 6)
    for flag in QUALITY_FLAGS:
        chosen += [f.source for f in checks.flagged(flag)[:per_flag] if f.source not in chosen]
    return chosen[:THUMBNAILS]


def _thumb(source: str, thumbs: dict) -> str:
    names = thumbs.get(source)
    if not names:
        return ""
    return (f'<img src="{_e(quote(names["photo"]))}" style="max-width:120px;height:auto" '
            f'alt="photo of {_e(source)}" title="{_e(source)}">')


def _group_row(number: int, group: DuplicateGroup, thumbs: dict) -> list[str]:
    farthest = max(i.distance for i in group.images)
    kind = ("same pixels" if group.kind == "exact" else
            "near: the same hash" if farthest == 0 else f"near: hashes up to {farthest} bits apart")
    photos = "<br>".join(f"{_e(i.source)} <span class=\"muted\">({_e(i.split)} · {_e(i.class_name)}"
                         + (f" · {i.distance} bits" if group.kind == "near" else "") + ")</span>"
                         for i in group.images)
    return [str(number), kind, photos, " ".join(filter(None, (_thumb(i.source, thumbs) for i in group.images)))]


def _table(table_id: str, head: list[str], rows: list[list[str]]) -> str:
    return (f'<table id="{table_id}"><tr>' + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows) + "</table>")


def _more(count: int) -> str:
    return f'<p class="muted">… and {count - LISTED} more; <code>build.json</code> lists them all.</p>' \
        if count > LISTED else ""


def section(checks: Optional[DataChecks], thumbs: dict) -> str:
    """The section's HTML; thumbs: source -> thumbnail paths by kind (or None)."""
    out = [f'<h2 id="{SECTION_ID}">Duplicates and photo quality</h2>']
    if checks is None:
        return "".join(out) + "<p>Not checked: this build.json has no <code>data_checks</code>.</p>"
    t = checks.thresholds
    out.append(f'<p class="cap">Every written photo\'s perceptual hash (64 bits) and pixel digest, taken while it was '
               f"processed: photos whose hashes are at most {_n(t, 'near_duplicate_bits')} bits apart are one photo "
               "(a re-encoded, resized or brightened copy is 0-4 bits away, another photo about 32), \"same pixels\" "
               "when they decode to the same pixels. These are listed, never removed from the dataset. "
               f"{checks.checked} photos checked.</p>")
    if checks.unchecked:
        out.append(f"<p><b>{checks.unchecked} written images were not checked</b>: their records come from a build "
                   "made before these checks (<code>--overwrite</code> checks them).</p>")
    for where in WHERE:
        groups = checks.groups(where)
        what, why = HEADINGS[where]
        title = f'<h3 id="dup-{where}">{len(groups)} photo{"s" if len(groups) != 1 else ""} {what}</h3>'
        if not groups:
            out.append(title.replace("<h3", "<h3 class=\"muted\"", 1))
            continue
        body = (f'<p class="cap">{why}</p>'
                + _table(f"duplicates-{where}", ["#", "kind", "photos (split · class)", "thumbnails"],
                         [_group_row(n, g, thumbs) for n, g in enumerate(groups[:LISTED], start=1)])
                + _more(len(groups)))
        out.append(f'<div class="alert">{title}{body}</div>' if where == ACROSS_SPLITS else title + body)
    for flag in QUALITY_FLAGS:
        flagged = checks.flagged(flag)
        plural = "s" if len(flagged) != 1 else ""
        title = f'<h3 id="flag-{flag}">{len(flagged)} {FLAG_HEADINGS[flag]} photo{plural}</h3>'
        if not flagged:
            out.append(title.replace("<h3", "<h3 class=\"muted\"", 1))
            continue
        rows = [[_e(f.source), _e(f.split), _e(f.class_name),
                 f"sharpness {f.measures['sharpness']:g}, detail {f.measures['detail']:g}, mean luma "
                 f"{f.measures['luma']:.0f}, 99 % of it at or below {f.measures['luma_p99']:g}, "
                 f"{f.measures['clipped']:.0%} blown out", _thumb(f.source, thumbs)] for f in flagged[:LISTED]]
        out.append(title + _rule(flag, t) + _table(f"flagged-{flag}", ["file", "split", "class", "measures", ""], rows)
                   + _more(len(flagged)))
    return "".join(out)


def _rule(flag: str, t: dict) -> str:
    rule = {"blurry": f"sharpness below {_n(t, 'sharpness_below')} or detail below {_n(t, 'detail_below')} "
                      "(on the photo at up to 640 px)",
            "dark": f"99 % of the pixels have a luma below {_n(t, 'dark_luma_p99_below')} (of 255)",
            "overexposed": f"more than {_n(t, 'overexposed_clipped_above', '.0%')} of the pixels blown out "
                           "(luma 250 or more): over-exposed, or mostly a white backdrop"}[flag]
    return f'<p class="cap">{rule}.</p>'


def _photos(count: int) -> str:
    return f"{count} photo{'s' if count != 1 else ''} appear{'s' if count == 1 else ''}"


def _spans(groups: list[DuplicateGroup], attribute: str) -> str:
    """"two splits (train/test)" or "more than one class (A/B, A/B/C, ...)"."""
    spans = sorted({"/".join(printable(n) for n in getattr(g, attribute)) for g in groups})
    shown = ", ".join(spans[:3]) + (", ..." if len(spans) > 3 else "")
    if max(len(getattr(g, attribute)) for g in groups) == 2:
        return f"two {attribute} ({shown})"
    return f"more than one {'split' if attribute == 'splits' else 'class'} ({shown})"


def summary_lines(checks: Optional[DataChecks]) -> list[str]:
    """The summary's lines about duplicates and quality: one for each kind
    found (none when there is nothing to say)."""
    if checks is None:
        return []
    where = " listed in build.json and report.html"
    lines = []
    across = checks.groups(ACROSS_SPLITS)
    if across:
        lines.append(f"  {_photos(len(across))} in {_spans(across, 'splits')}: they inflate test scores;{where}")
    across = checks.groups(ACROSS_CLASSES)
    if across:
        lines.append(f"  {_photos(len(across))} in {_spans(across, 'classes')}:{where}")
    within = checks.groups(WITHIN_CLASS)
    if within:
        lines.append(f"  {_photos(len(within))} more than once in one class:{where}")
    for flag in QUALITY_FLAGS:
        count = len(checks.flagged(flag))
        if count:
            lines.append(f"  {count} photo{'s are' if count != 1 else ' is'} {FLAG_HEADINGS[flag]}:{where}")
    if checks.unchecked:
        lines.append(f"  {checks.unchecked} written images were not checked for duplicates and quality: their "
                     "records come from a build made before these checks (--overwrite checks them)")
    return lines
