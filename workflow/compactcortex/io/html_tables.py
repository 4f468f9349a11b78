"""Tables as small standalone HTML pages (the report's tables: ``snakemake --report`` shows an HTML output inline,
where a CSV is only a download). Cells come as text, already formatted; a page is written atomically and holds no
clock time, so the same tables give the same bytes."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from compactcortex.atomic import write_text_atomic

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; font-size: 13px; margin: 12px; }
h1 { font-size: 17px; margin: 0 0 8px; }
h2 { font-size: 14px; margin: 18px 0 6px; }
p.note { color: #555; margin: 4px 0 8px; max-width: 60em; }
table { border-collapse: collapse; margin-bottom: 8px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 10px; white-space: nowrap; }
th { background: #f2f2f2; text-align: left; position: sticky; top: 0; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
tr:hover td { background: #fafae6; }
"""


@dataclass(frozen=True)
class HtmlTable:
    """One table of a page: its heading, a note under it, the column names and the rows (cells as text)."""

    heading: str
    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    note: str = ""


def _is_number(cell: str) -> bool:
    try:
        float(cell.replace(",", "").split(" ")[0])
    except ValueError:
        return False
    return True


def html_page(title: str, tables: Sequence[HtmlTable]) -> str:
    """The page's text: a title and each table (numbers right-aligned), every cell escaped."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for table in tables:
        if table.heading:
            parts.append(f"<h2>{html.escape(table.heading)}</h2>")
        if table.note:
            parts.append(f'<p class="note">{html.escape(table.note)}</p>')
        parts.append("<table><thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in table.columns) + "</tr>")
        parts.append("</thead><tbody>")
        for row in table.rows:
            if len(row) != len(table.columns):
                raise ValueError(f"a row of {table.heading!r} has {len(row)} cells for {len(table.columns)} columns")
            cells = (
                f'<td class="number">{html.escape(cell)}</td>' if _is_number(cell) else f"<td>{html.escape(cell)}</td>"
                for cell in map(str, row)
            )
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</tbody></table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_html_tables(path: str | Path, title: str, tables: Sequence[HtmlTable]) -> None:
    """A page of tables (``html_page``), written atomically."""
    write_text_atomic(path, html_page(title, tables))
