"""The report's page: sections, figures, tables, and the HTML page around them.

Everything the page needs is in the page or in its folder: the style sheet is inline, figures
are PNG files in ``figures/`` and tables CSV files in ``tables/``, both linked by relative
paths. No script runs; sections collapse with ``<details>``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

#: ``<meta name="generator">`` of every report page: how :func:`~neurorecord.report.write_report`
#: recognises a folder it may replace.
GENERATOR = "neurorecord report"

#: Rows of a table shown on the page; the CSV file next to it holds every row.
MAX_ROWS = 12

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 72rem; padding: 1rem 2rem; color: #222; line-height: 1.4; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; display: inline; } h3 { font-size: 1.05rem; display: inline; }
nav { background: #f4f4f4; padding: 0.5rem 1rem; border-radius: 4px; }
nav ul { margin: 0.2rem 0; padding-left: 1.2rem; } nav li { margin: 0.1rem 0; }
details { margin: 0.6rem 0; border-left: 3px solid #0072B2; padding-left: 0.8rem; }
details details { border-left-color: #bbb; }
summary { cursor: pointer; padding: 0.2rem 0; }
figure { margin: 0.8rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: 0.9rem; color: #444; max-width: 60rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.4rem 0; }
th, td { border: 1px solid #ccc; padding: 0.15rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f7f7f7; padding: 0.6rem; overflow-x: auto; font-size: 0.8rem; }
p.note { color: #8a4b00; }
"""


def escape(value: object) -> str:
    """Text made safe for HTML (``&``, ``<``, ``>``, quotes).

    >>> escape("<fc2> & 'x'")
    '&lt;fc2&gt; &amp; &#x27;x&#x27;'
    """
    return html.escape(str(value), quote=True)


def slug(text: str) -> str:
    """A file and anchor name from a node path: ``analyses/fc2/likes-3`` -> ``analyses-fc2-likes-3``.

    >>> slug("analyses/fc3/fc3-populations/clusters/kmeans-gap-activity")
    'analyses-fc3-fc3-populations-clusters-kmeans-gap-activity'
    """
    return re.sub(r"[^A-Za-z0-9_.]+", "-", text.strip("/")).strip("-") or "root"


def cell(value: object) -> str:
    """One table cell: numbers with 4 significant digits (right-aligned), text escaped.

    >>> cell(0.000123456), cell(3), cell("fc2.1"), cell(float("nan"))
    ('<td class="num">0.0001235</td>', '<td class="num">3</td>', '<td>fc2.1</td>', '<td class="num">nan</td>')
    """
    if isinstance(value, (bool, np.bool_)):
        return f"<td>{bool(value)}</td>"
    if isinstance(value, (int, np.integer)):
        return f'<td class="num">{int(value)}</td>'
    if isinstance(value, (float, np.floating)):
        return f'<td class="num">{float(value):.4g}</td>'
    return f"<td>{escape(value)}</td>"


@dataclass
class Section:
    """A collapsible section of the page: a title, an anchor, HTML parts, and sub-sections."""

    title: str
    anchor: str
    parts: list[str] = field(default_factory=list)
    children: list[Section] = field(default_factory=list)
    open: bool = False

    def add(self, part: str) -> None:
        self.parts.append(part)

    def html(self, level: int = 2) -> str:
        inner = "\n".join(self.parts + [child.html(level + 1) for child in self.children])
        tag = "h2" if level == 2 else "h3"
        return (f'<details id="{escape(self.anchor)}"{" open" if self.open else ""}>\n<summary><{tag}>{escape(self.title)}'
                f"</{tag}></summary>\n{inner}\n</details>")

    def toc(self) -> str:
        sub = "".join(f'<li><a href="#{escape(c.anchor)}">{escape(c.title)}</a></li>' for c in self.children)
        return f'<li><a href="#{escape(self.anchor)}">{escape(self.title)}</a>' + (f"<ul>{sub}</ul>" if sub else "") + "</li>"


def paragraph(text: str, note: bool = False) -> str:
    return f'<p class="note">{escape(text)}</p>' if note else f"<p>{escape(text)}</p>"


def preformatted(text: str) -> str:
    return f"<pre>{escape(text)}</pre>"


def key_values(rows: Sequence[tuple[str, object]]) -> str:
    """A two-column table of facts (provenance)."""
    body = "".join(f"<tr><th>{escape(k)}</th>{cell(v)}</tr>" for k, v in rows)
    return f"<table>{body}</table>"


def figure(src: str, caption: str, alt: str) -> str:
    """A figure: the image at ``src`` (relative to the page) and its caption."""
    return (f'<figure><img src="{escape(src)}" alt="{escape(alt)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def table(frame: pd.DataFrame, csv: str | None, caption: str, max_rows: int = MAX_ROWS) -> str:
    """The first ``max_rows`` rows of ``frame`` as a table; ``csv`` (relative link) holds them all."""
    shown = frame.head(max_rows)
    head = "".join(f"<th>{escape(c)}</th>" for c in shown.columns)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in shown.itertuples(index=False))
    more = f"{len(shown)} of {len(frame)} rows" if len(frame) > len(shown) else f"{len(frame)} rows"
    link = f' (<a href="{escape(csv)}">CSV, all {len(frame)} rows</a>)' if csv else ""
    return f"<p>{escape(caption)}; {more}{link}.</p><table><tr>{head}</tr>{body}</table>"


def page(title: str, intro: str, sections: Sequence[Section]) -> str:
    """The whole HTML page: title, table of contents, sections."""
    toc = "".join(s.toc() for s in sections)
    body = "\n".join(s.html() for s in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="{GENERATOR}">
<title>{escape(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{escape(title)}</h1>
<p>{escape(intro)}</p>
<nav><strong>Contents</strong><ul>{toc}</ul></nav>
{body}
</body>
</html>
"""


def is_report(folder: Path) -> bool:
    """Whether ``folder`` holds a report this package wrote (its ``index.html`` has the generator tag)."""
    index = folder / "index.html"
    try:
        return f'<meta name="generator" content="{GENERATOR}">' in index.read_text(encoding="utf-8", errors="replace")[:2000]
    except OSError:
        return False
