"""report.html's page: its sections, as self-contained HTML (no network,
no JavaScript), and how much each shows.

Everything but the thumbnails is aggregate statistics over the records, and
what lists images or files is capped (`CLASSES_SHOWN`, `FILES_SHOWN`, the
contact sheets' size), so the page stays small at any number of images.
Every name and path is escaped (names.printable, then HTML).  report.py
chooses the images and draws the thumbnails.
"""

from __future__ import annotations

import html
import json
import re
import statistics
from collections import Counter, defaultdict
from typing import Optional
from urllib.parse import quote

from .buildinfo import BuildInfo
from .labels import class_color, legend_rows
from .layout import THUMB_KINDS
from .modeluse import STAGE_NAMES
from .names import printable
from .outputs import is_whole, thumbnail_size
from .records import STATUSES, Record
from .report_checks import SECTION_ID
from .report_checks import section as data_checks_section
from .sampling import CLASSES_SHOWN

BINS = 20                   # bars of a skin-fraction histogram
FILES_SHOWN = 100           # skipped, failed or ignored files listed by name, each, at most


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;background:#fafafa;margin:0}
main{max-width:1200px;margin:0 auto;padding:12px 24px 48px}
h1{font-size:24px;margin:16px 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:16px;margin:20px 0 6px}
nav a{margin-right:14px}a{color:#0b62a4}
table{border-collapse:collapse;margin:6px 0;background:#fff}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.total td{font-weight:600;background:#f6f6f6}
.sw{display:inline-block;width:28px;height:14px;border:1px solid #888;vertical-align:middle}
.muted,.cap{color:#666}.cap{max-width:900px}
code{background:#eee;padding:0 3px;border-radius:3px}
.hists{display:flex;flex-wrap:wrap;gap:16px}.hist{background:#fff;border:1px solid #ddd;padding:6px 8px}
.sheet{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;background:#fff;border:1px solid #ddd;padding:6px;width:750px}
figure .row{display:flex;gap:4px;align-items:flex-start}
figure img{display:block;max-width:180px;height:auto;background:#000}
figcaption{font-size:12px;margin-top:4px;overflow-wrap:anywhere}
.none{width:732px;height:60px;display:flex;align-items:center;justify-content:center;background:#eee;color:#777}
details{margin:6px 0}summary{cursor:pointer}
.alert{background:#fff3cd;border:2px solid #d9822b;padding:8px 12px;margin:8px 0}.alert ul{margin:4px 0}
tr.fallback td{background:#fde2c8}
"""


def _e(value: object) -> str:
    return html.escape(printable(str(value)), quote=True)


def _url(relative: str) -> str:
    """A dst-relative path as an escaped, percent-encoded relative URL."""
    return _e(quote(relative))


def _css(bgr: tuple[int, int, int]) -> str:
    b, g, r = bgr
    return f"#{r:02x}{g:02x}{b:02x}"


def _hex(class_id: int) -> str:
    return _css(class_color(class_id))


def _table(head: list[str], rows: list[list[str]], numeric_from: int = 99, total_last: bool = False,
           attrs: str = "") -> str:
    """A table of already escaped cells; columns from `numeric_from` on are right-aligned."""
    out = [f"<table{attrs}><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for index, row in enumerate(rows):
        cls = ' class="total"' if total_last and index == len(rows) - 1 else ""
        cells = "".join(f'<td class="n">{c}</td>' if i >= numeric_from else f"<td>{c}</td>" for i, c in enumerate(row))
        out.append(f"<tr{cls}>{cells}</tr>")
    return "".join(out) + "</table>"


def _fallback_alert(info: BuildInfo) -> str:
    """A box at the very top naming every stage that ran without its model, or nothing."""
    fallbacks = info.models.fallbacks()
    if not fallbacks:
        return ""
    return (f'<div class="alert" id="fallbacks"><b>{len(fallbacks)} stage{"s" if len(fallbacks) > 1 else ""} ran '
            "without the model skinseg uses by default</b>: the masks are less precise than with it "
            "(docs/quality.md). Provide the model and build again (<code>skinseg models where</code> says where "
            "models are looked for, <code>skinseg models fetch</code> downloads them).<ul>"
            + "".join(f"<li>{_e(STAGE_NAMES[stage])}: {_e(use.used)} instead of <code>{_e(use.wanted)}</code>, "
                      f"because {_e(use.reason)}</li>" for stage, use in fallbacks)
            + "</ul></div>")


def _models_section(info: BuildInfo) -> str:
    """What each stage ran with (file, sha256, where it came from)."""
    rows = []
    for stage, use in info.models.items():
        cls = ' class="fallback"' if use.fell_back else ""
        what = (f"<b>fallback</b>: {_e(use.used)} instead of <code>{_e(use.wanted)}</code>" if use.fell_back
                else _e(use.used) + (f" ({_e(use.reason)})" if use.reason else ""))
        file = (f"<code>{_e(use.file)}</code> sha256 <code>{_e((use.sha256 or '?')[:16])}</code>…"
                f" from {_e(use.source)}" if use.file else "–")
        rows.append(f"<tr{cls}><td>{_e(STAGE_NAMES[stage])}</td><td>{what}</td><td>{file}</td></tr>")
    return ('<h2 id="models">Models</h2><table id="models-table"><tr><th>stage</th><th>ran with</th><th>file</th>'
            "</tr>" + "".join(rows) + "</table>")


def _params_section(info: BuildInfo) -> str:
    rows = []
    for key, value in info.parameters.items():
        # One row per group (face, skin, ...): the page stays short.
        items = value.items() if isinstance(value, dict) else [(None, value)]
        rows.append([_e(key), " · ".join((f"{_e(k)} " if k else "") + f"<code>{_e(json.dumps(v, ensure_ascii=False))}"
                                          "</code>" for k, v in items)])
    rows.append(["mask type", _e(info.mask_dtype)])
    out = ['<h2 id="parameters">Parameters</h2>',
           (f'<p class="cap">skinseg {_e(info.version)}. Every option that affects the outputs '
            "(also in <code>build.json</code>).</p>"),
           _table(["parameter", "value"], rows)]
    if info.warnings:
        out.append("<h3>Warnings</h3><ul>" + "".join(f"<li>{_e(w)}</li>" for w in info.warnings) + "</ul>")
    ignored = info.ignored_files
    if ignored:
        out.append(f"<details><summary>{len(ignored)} files ignored (not images)</summary>"
                   + _table(["file", "why"], [[_e(i.path), _e(i.reason)] for i in ignored[:FILES_SHOWN]])
                   + _more(len(ignored), "<code>build.json</code> lists them all") + "</details>")
    return "".join(out)


def _more(count: int, where: str) -> str:
    """The line under a list cut at FILES_SHOWN."""
    return f'<p class="muted">… and {count - FILES_SHOWN} more; {where}.</p>' if count > FILES_SHOWN else ""


def _legend_section(class_names: list[str], by_class: dict[str, Counter], info: BuildInfo) -> str:
    def swatch(bgr: tuple[int, int, int]) -> str:
        return f'<span class="sw" style="background:{_css(bgr)}"></span>'

    values = legend_rows(class_names, info.layout, info.mask_dtype)
    rows = [[swatch(values[0][2]), values[0][0], _e(values[0][1]), "", "", ""]]
    for class_id, name in enumerate(class_names, start=1):
        counts = by_class.get(name, Counter())
        rows.append([swatch(class_color(class_id)), str(class_id),
                     f'<a href="#class-{class_id}">{_e(name)}</a>' if class_id <= CLASSES_SHOWN else _e(name)]
                    + [str(counts[s]) for s in STATUSES])
    rows += [[swatch(colour), value, _e(meaning), "", "", ""] for value, meaning, colour in values[len(rows):]]
    return ('<h2 id="legend">Classes</h2><p class="cap">Colour of the class in <code>masks_preview/</code> and in '
            "the overlays below, its id in <code>masks/</code>, and its images.</p>"
            + _table(["colour", "id", "class", *STATUSES], rows, numeric_from=3))


def _counts_section(records: list[Record], class_names: list[str]) -> str:
    cells: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for record in records:
        cells[(record.split, record.class_name)][record.status] += 1
    order = {name: i for i, name in enumerate(class_names)}
    keys = sorted(cells, key=lambda k: (k[0], order.get(k[1], len(order)), k[1]))
    rows = [[_e(split), _e(name)] + [str(cells[(split, name)][s]) for s in STATUSES] for split, name in keys]
    totals = Counter(r.status for r in records)
    rows.append(["all", "all"] + [str(totals[s]) for s in STATUSES])
    return ('<h2 id="counts">Counts</h2>'
            + _table(["split", "class", *STATUSES], rows, numeric_from=2, total_last=True, attrs=' id="counts-table"'))


def _reason_pattern(reason: Optional[str]) -> str:
    """A reason with its numbers replaced, so that the same cause groups together."""
    return re.sub(r"\d+(?:\.\d+)?", "N", reason or "no reason recorded")


def _problems_section(records: list[Record]) -> str:
    out = ['<h2 id="problems">Skipped and failed</h2>']
    for status in ("skipped", "failed"):
        chosen = [r for r in records if r.status == status]
        if not chosen:
            out.append(f"<p>No image was {status}.</p>")
            continue
        groups = Counter(_reason_pattern(r.reason) for r in chosen)
        rows = [[_e(pattern), str(n)] for pattern, n in sorted(groups.items(), key=lambda g: (-g[1], g[0]))]
        files = [[_e(r.source), _e(r.split), _e(r.class_name), _e(r.reason or "")] for r in chosen[:FILES_SHOWN]]
        out.append(f"<h3>{len(chosen)} {status}</h3>"
                   + _table(["reason (numbers shown as N)", "images"], rows, numeric_from=1)
                   + f"<details{' open' if len(chosen) <= 50 else ''}><summary>the {len(chosen)} {status} files"
                   + "</summary>" + _table(["file", "split", "class", "reason"], files, attrs=f' id="{status}-files"')
                   + _more(len(chosen), "<code>manifest.jsonl</code> has every image's record") + "</details>")
    return "".join(out)


def _faces_section(groups: dict[str, list[Record]], info: BuildInfo, class_names: list[str]) -> str:
    if not info.face_enabled:
        return '<h2 id="faces">Faces</h2><p>Face detection was off (<code>--no-face</code>).</p>'
    detector = info.models.face_detector
    rows = []
    for name in class_names[:CLASSES_SHOWN]:
        analysed = [r for r in groups.get(name, []) if r.status != "failed"]
        found = Counter(r.face.get("detector", "?") for r in analysed if r.face)
        share = f"{sum(found.values()) / len(analysed):.0%}" if analysed else "–"
        by_detector = ", ".join(f"{_e(d)}: {n}" for d, n in sorted(found.items())) or "–"
        rows.append([_e(name), str(len(analysed)), str(sum(found.values())), share, by_detector])
    return ('<h2 id="faces">Faces</h2>'
            f'<p class="cap">Detector: <b>{_e(detector.describe())}</b>'
            + (" <b>(a fallback, see Models above)</b>" if detector.fell_back else "")
            + ". Counted over the images that were analysed (written or skipped).</p>"
            + _table(["class", "analysed", "with a face", "share", "by detector"], rows, numeric_from=1)
            + _more_classes(len(class_names)))


def _more_classes(count: int) -> str:
    """The line under a per-class section cut at CLASSES_SHOWN."""
    if count <= CLASSES_SHOWN:
        return ""
    return (f'<p class="muted">… and {count - CLASSES_SHOWN} more classes, not shown here; '
            "<code>build.json</code> has the counts of every class.</p>")


def _histogram(values_written: list[float], values_skipped: list[float], colour: str, threshold: float) -> str:
    """Inline SVG: skin fraction in BINS bins, written stacked on skipped (grey); dashed line = the threshold."""
    width, height, pad = 240, 70, 14
    bar = width / BINS
    bins_w, bins_s = [0] * BINS, [0] * BINS
    for values, bins in ((values_written, bins_w), (values_skipped, bins_s)):
        for v in values:
            bins[min(BINS - 1, int(v * BINS))] += 1
    top = max([w + s for w, s in zip(bins_w, bins_s)] + [1])
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + pad}" '
              f'viewBox="0 0 {width} {height + pad}" role="img">')]
    for i, (w, s) in enumerate(zip(bins_w, bins_s)):
        x = i * bar
        hs, hw = height * s / top, height * w / top
        label = f"{i / BINS:.2f}–{(i + 1) / BINS:.2f}: {w} written, {s} skipped"
        parts.append(f'<g><title>{label}</title>'
                     f'<rect x="{x:.1f}" y="{height - hs:.1f}" width="{bar - 1:.1f}" height="{hs:.1f}" fill="#bbb"/>'
                     f'<rect x="{x:.1f}" y="{height - hs - hw:.1f}" width="{bar - 1:.1f}" height="{hw:.1f}" '
                     f'fill="{colour}"/></g>')
    tx = threshold * width
    parts.append(f'<line x1="{tx:.1f}" y1="0" x2="{tx:.1f}" y2="{height}" stroke="#c00" stroke-dasharray="3,2"/>'
                 f'<line x1="0" y1="{height}" x2="{width}" y2="{height}" stroke="#888"/>'
                 f'<text x="0" y="{height + 12}" font-size="10">0</text>'
                 f'<text x="{width / 2 - 8:.0f}" y="{height + 12}" font-size="10">0.5</text>'
                 f'<text x="{width - 8}" y="{height + 12}" font-size="10">1</text></svg>')
    return "".join(parts)


def _histograms_section(groups: dict[str, list[Record]], info: BuildInfo, class_names: list[str]) -> str:
    threshold = info.min_skin_fraction
    cards = []
    for class_id, name in enumerate(class_names[:CLASSES_SHOWN], start=1):
        mine = [r for r in groups.get(name, []) if r.skin_fraction is not None]
        written = [r.skin_fraction for r in mine if r.status == "written"]
        skipped = [r.skin_fraction for r in mine if r.status == "skipped"]
        median = f"median {statistics.median(written):.0%}" if written else "nothing written"
        cards.append(f'<div class="hist"><b>{_e(name)}</b> <span class="muted">{len(mine)} images, {median}</span>'
                     f"<br>{_histogram(written, skipped, _hex(class_id), threshold)}</div>")
    return ('<h2 id="skin">Skin fraction</h2><p class="cap">Share of the crop that is skin, in 20 bins from 0 to 1: '
            "written images in the class colour, skipped ones in grey; the dashed line is "
            f"<code>--min-skin-fraction {threshold:g}</code>. Hover a bar for its counts.</p>"
            f'<div class="hists">{"".join(cards)}</div>' + _more_classes(len(class_names)))


def _figure(record: Record, names: Optional[dict[str, str]], notes: list[str]) -> str:
    """One image: the photo with its crop box, then crop, skin only and overlay side by side, with a caption."""
    x0, y0, x1, y1 = record.crop
    if names:
        sizes = {kind: thumbnail_size(x1 - x0, y1 - y0) for kind in THUMB_KINDS}
        sizes["photo"] = thumbnail_size(*record.size)
        links = {"photo": None, "crop": None, "skin": record.image, "overlay": record.preview}
        cells = []
        for kind in THUMB_KINDS:
            width, height = sizes[kind]
            img = (f'<img src="{_url(names[kind])}" width="{width}" height="{height}" '
                   f'alt="{kind} of {_e(record.source)}" title="{kind}">')
            cells.append(f'<a href="{_url(links[kind])}">{img}</a>' if links[kind] else img)
        row = f'<div class="row">{"".join(cells)}</div>'
    else:
        row = '<div class="none">thumbnails unavailable (source or outputs unreadable)</div>'
    faces = "face" if record.face else "no face"
    width, height = record.size
    crop = ("whole photo" if is_whole(record.crop, width, height)
            else f"crop {x1 - x0}x{y1 - y0}, {(x1 - x0) * (y1 - y0) / (width * height):.0%} of the photo")
    caption = ([f"<b>{_e(record.source)}</b>", f"{record.skin_fraction:.1%} skin, {faces}, {crop}"]
               + [_e(n) for n in notes])
    return f'<figure>{row}<figcaption>{" · ".join(caption)}</figcaption></figure>'


def _suspects_section(ranked: list[tuple[Record, float, list[str]]], thumbs: dict, rule: str) -> str:
    figures = [_figure(r, thumbs.get(r.source), [f"score {score:.2f}"] + reasons) for r, score, reasons in ranked]
    return ('<h2 id="suspects">Most likely wrong first</h2><p class="cap">Written images ranked by a score: '
            f"{_e(rule)} Each image: the photo with its crop outlined, the crop, its skin, the mask over the crop "
            "(click for the full-size files).</p>"
            + (f'<div class="sheet">{"".join(figures)}</div>' if figures else "<p>No written images.</p>"))


def _sheets_section(samples: dict[str, list[Record]], class_names: list[str], by_class: dict[str, Counter],
                    thumbs: dict) -> str:
    out = [('<h2 id="sheets">Contact sheets</h2><p class="cap">Per class, a fixed sample of the written images '
            "(those with the smallest SHA-1 of their source path: adding images changes it only where a new one "
            "hashes lower): the photo with its crop outlined, the crop, its skin, the mask over the crop.</p>")]
    for class_id, name in enumerate(class_names[:CLASSES_SHOWN], start=1):
        chosen = samples.get(name, [])
        figures = "".join(_figure(r, thumbs.get(r.source), []) for r in chosen)
        out.append(f'<h3 id="class-{class_id}"><span class="sw" style="background:{_hex(class_id)}"></span> '
                   f"{_e(name)} <span class=\"muted\">(id {class_id}; {len(chosen)} of "
                   f"{by_class.get(name, Counter())['written']} written)</span></h3>"
                   + (f'<div class="sheet">{figures}</div>' if figures else "<p>No written images.</p>"))
    return "".join(out) + _more_classes(len(class_names))


def page(records: list[Record], info: BuildInfo, class_names: list[str], samples: dict[str, list[Record]],
         ranked: list[tuple[Record, float, list[str]]], thumbs: dict, suspect_rule: str) -> str:
    """report.html's text: every section, from the records and build.json.
    samples: the contact sheets' images per class; ranked: the suspects
    (record, score, reasons); thumbs: each shown image's thumbnail paths (or
    None); suspect_rule: the sentence that says how suspects are scored."""
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        groups[record.class_name].append(record)
    by_class = {name: Counter(r.status for r in group) for name, group in groups.items()}
    totals = Counter(r.status for r in records)
    src = info.src
    summary = ", ".join(f"{totals[s]} {s}" for s in STATUSES)
    nav = "".join(f'<a href="#{anchor}">{label}</a>' for anchor, label in (
        (SECTION_ID, "duplicates and quality"), ("models", "models"), ("parameters", "parameters"),
        ("legend", "classes"), ("counts", "counts"),
        ("problems", "skipped/failed"), ("faces", "faces"), ("skin", "skin fraction"),
        ("suspects", "most likely wrong"), ("sheets", "contact sheets")))
    body = [f"<h1>skinseg build report</h1><p>Source <code>{_e(src)}</code>: {len(records)} images, {summary}.</p>",
            _fallback_alert(info), f"<nav>{nav}</nav>", data_checks_section(info.data_checks, thumbs),
            _models_section(info),
            _params_section(info), _legend_section(class_names, by_class, info), _counts_section(records, class_names),
            _problems_section(records), _faces_section(groups, info, class_names),
            _histograms_section(groups, info, class_names), _suspects_section(ranked, thumbs, suspect_rule),
            _sheets_section(samples, class_names, by_class, thumbs)]
    return ('<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>skinseg report: {_e(src)}</title><link rel="icon" href="data:,"><style>{CSS}</style></head>'
            f'<body><main>{"".join(body)}</main></body></html>\n')
