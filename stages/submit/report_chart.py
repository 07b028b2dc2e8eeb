"""The report's inline furniture (pure text): the per-class AP chart as SVG (no plotting library), the page's
CSS, and the few lines of JS of the image lightbox (the enlarged image reuses the thumbnail's data URI, so
every image is embedded once)."""

from __future__ import annotations

import html
from collections.abc import Mapping

from stages.classes import CLASS_NAMES, NUM_CLASSES

SERIES_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def ap_chart_svg(results: Mapping[str, dict], width: int = 760) -> str:
    """Grouped horizontal bars: per class, the AP of every named result (e.g. fused, then each source).

    Classes without truth show "no truth" instead of bars.
    """
    names = list(results)
    bar, gap, label_width = 7, 8, 250
    group = bar * len(names) + gap
    plot = width - label_width - 60
    height = 30 + NUM_CLASSES * group + 20 * len(names) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="11" role="img" aria-label="per-class AP">']
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        x = label_width + tick * plot
        parts.append(f'<line x1="{x:.1f}" y1="20" x2="{x:.1f}" y2="{20 + NUM_CLASSES * group}" stroke="#ddd"/>')
        parts.append(f'<text x="{x:.1f}" y="14" text-anchor="middle">{tick:g}</text>')
    for klass in range(NUM_CLASSES):
        top = 20 + klass * group
        name = html.escape(f"{klass} {CLASS_NAMES[klass]}")
        parts.append(f'<text x="{label_width - 6}" y="{top + group / 2 + 3:.1f}" text-anchor="end">{name}</text>')
        values = [results[series]["per_class"][str(klass)]["AP"] for series in names]
        if all(value is None for value in values):
            parts.append(f'<text x="{label_width + 4}" y="{top + group / 2 + 3:.1f}" fill="#999">no truth</text>')
            continue
        for index, (series, value) in enumerate(zip(names, values)):
            if value is None:
                continue
            colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
            y = top + index * bar
            parts.append(f'<rect x="{label_width}" y="{y}" width="{max(value * plot, 0.5):.1f}" height="{bar - 1}" '
                         f'fill="{colour}"><title>{html.escape(series)}: {value:.3f}</title></rect>')
    legend_top = 30 + NUM_CLASSES * group
    for index, series in enumerate(names):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        mean = results[series]["mAP"]
        label = html.escape(f"{series} (mAP {mean:.3f})" if mean is not None else series)
        y = legend_top + 20 * index
        parts.append(f'<rect x="{label_width}" y="{y}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{label_width + 18}" y="{y + 10}">{label}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 1300px; color: #222 }
table { border-collapse: collapse; font-size: 12px; margin: 0.6em 0 }
td, th { border: 1px solid #ccc; padding: 3px 6px; text-align: right; vertical-align: top }
th { background: #f4f4f4 }
td.text, td.note, td.truth, th.name, table.cells td { text-align: left }
td.note { max-width: 32em; color: #7a4b00 }
table.settings td, table.versions td { font-family: monospace }
.notes { background: #fff8e5; border: 1px solid #e8c96a; padding: 0 1em; margin: 1em 0 }
.legend table td, .legend table th { text-align: left }
.swatch { display: inline-block; width: 14px; height: 14px; border: 1px solid; vertical-align: middle }
section.image { display: flex; gap: 1.2em; align-items: flex-start; border-top: 1px solid #ddd;
                padding: 0.8em 0 }
img.thumb { width: 360px; max-width: 40vw; height: auto; cursor: zoom-in; flex: none; background: #000 }
div.cells { max-height: 440px; overflow: auto; flex: 1 }
div.cells h3 { font-size: 14px; margin: 0 0 0.3em 0 }
table.cells tr.image-row td, table.cells tr.image-row th { border-bottom: 2px solid #888; background: #eef3fa }
table.cells td.hit { background: #e3f4e3 }
table.cells thead th { text-align: left }
table.cells td { white-space: nowrap }
table.cells td.truth { white-space: normal; min-width: 14em }
details summary { cursor: pointer; color: #1f4e99; margin: 0.4em 0 }
table.cells small { color: #666 }
span.hit { color: #1a7f1a; font-weight: bold }
#lightbox { position: fixed; inset: 0; background: rgba(0, 0, 0, 0.92); display: flex; flex-direction: column;
            align-items: center; justify-content: center; z-index: 10; cursor: zoom-out }
#lightbox[hidden] { display: none }
#lightbox img { height: min(88vh, 1400px); max-width: 96vw; object-fit: contain }
#lightbox p { color: #eee; font-size: 13px; margin: 0.4em }
"""

SCRIPT = """
function enlarge(img) {
  document.getElementById('lightbox-img').src = img.src;
  document.getElementById('lightbox-caption').textContent = img.alt;
  document.getElementById('lightbox').hidden = false;
}
function shut() { document.getElementById('lightbox').hidden = true; }
document.addEventListener('keydown', function (event) { if (event.key === 'Escape') shut(); });
"""


def page_style() -> str:
    return STYLE


def script() -> str:
    return SCRIPT
