"""The report's HTML page: a summary, the pictures, a table of sections and links to every file.

Every text from the musician (section names, prompts, titles) is escaped; characters HTML and
XML cannot hold are replaced. The page needs no script and no network: it opens from disk.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from urllib.parse import quote

from bridge.export.dawproject import xml_text
from bridge.export.report.model import ReportData

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1000px; color: #212529; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.facts { color: #495057; } img { max-width: 100%; height: auto; border: 1px solid #dee2e6; }
table { border-collapse: collapse; font-size: .9rem; } td, th { padding: .2rem .6rem; text-align: left; }
tr:nth-child(even) { background: #f8f9fa; } .note { color: #6c757d; font-style: italic; }
figure { margin: 1rem 0; } figcaption { font-size: .9rem; color: #495057; }
"""


def esc(text: object) -> str:
    """``text`` safe inside HTML text and attribute values."""
    return html.escape(xml_text(str(text)), quote=True)


def href(path: str) -> str:
    """A relative link to ``path`` (forward slashes), percent-encoded, escaped for an attribute."""
    return esc(quote(path, safe="/"))


def _fmt_bar(bar: float) -> str:
    return f"{bar:g}"


def render_page(data: ReportData, images: Mapping[str, str], stem_images: Mapping[str, str]) -> str:
    """The page's HTML.

    Args:
        data: what the report shows.
        images: picture name ("timeline", "melody", "drums") -> PNG path relative to the page.
        stem_images: stem name -> its track picture's path relative to the page.
    """
    tm = data.tempo_map
    first = tm.points[0]
    tempo = f"{first.bpm:g} bpm, {first.time_signature}" + (
        f" ({len(tm.points)} tempo points)" if len(tm.points) > 1 else "")
    facts = [f"job {esc(data.job_id)}", f"model {esc(data.model)}" if data.model else "",
             f"seed {data.seed}" if data.seed is not None else "", f"key {esc(data.key)}" if data.key else "",
             esc(tempo)]
    out = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>stembridge report – {esc(data.title)}</title>", f"<style>{_STYLE}</style></head><body>",
        f"<h1>{esc(data.title)}</h1>", f'<p class="facts">{" · ".join(f for f in facts if f)}</p>',
    ]
    for line in data.notes:
        out.append(f'<p class="note">{esc(line)}</p>')
    captions = {
        "timeline": "Sections on the bar ruler, the tempo map (bpm, metre changes in red) and the chords.",
        "melody": "The melody as a piano roll (boxes) with the hum's pitch track (dots) running through it.",
        "drums": "The drum grid: a mark per hit, bigger marks are louder.",
    }
    out.append("<h2>What stembridge understood</h2>")
    for name, caption in captions.items():
        if name in images:
            out.append(f'<figure><img src="{href(images[name])}" alt="{esc(caption)}">'
                       f"<figcaption>{esc(caption)}</figcaption></figure>")
    out += ["<h2>Sections</h2>", "<table><tr><th>section</th><th>role</th><th>bars</th><th>start (beat)</th>"
            "<th>start (s)</th><th>length (s)</th></tr>"]
    for s in data.sections:
        out.append(
            f"<tr><td>{esc(s.name)}</td><td>{esc(s.role)}</td><td>{_fmt_bar(s.start_bar)}–{_fmt_bar(s.end_bar)}</td>"
            f"<td>{s.start_beat:g}</td><td>{s.start_seconds(tm):.3f}</td><td>{s.length_seconds(tm):.3f}</td></tr>"
        )
    out.append("</table>")
    out.append("<h2>Stems</h2>")
    if not data.stems:
        out.append('<p class="note">no stems were placed by this job</p>')
    for stem in dict.fromkeys(v.stem for v in data.stems):
        views = sorted((v for v in data.stems if v.stem == stem), key=lambda v: (v.section.start_beat, v.take))
        out.append(f"<h3>{esc(stem)}</h3>")
        if stem in stem_images:
            caption = (f"{stem}: waveform over spectrogram of each placement at its bars "
                       "(the newest take where a section has several)")
            out.append(f'<figure><img src="{href(stem_images[stem])}" alt="{esc(caption)}">'
                       f"<figcaption>{esc(caption)}</figcaption></figure>")
        out.append("<table>")
        for v in views:
            out.append(
                f"<tr><td>{esc(v.section.name)}</td><td>take {v.take}</td>"
                f'<td><a href="{href(v.file)}">{esc(v.file)}</a></td>'
                f'<td><audio controls preload="none" src="{href(v.file)}"></audio></td></tr>'
            )
        out.append("</table>")
    if data.links:
        out.append("<h2>Files</h2><ul>")
        for label, path in data.links:
            out.append(f'<li><a href="{href(path)}">{esc(label)}</a> <code>{esc(path)}</code></li>')
        out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
