"""Rows of a table as text an embedder and BM25 can use: each value next to its column name.

A row alone ("田中, 営業, 42") says little; with its header ("氏名: 田中 | 部署: 営業 | 年齢: 42")
every chunk that holds the row also holds what its values mean, wherever the chunk boundary falls.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

MAX_ROWS = 200_000
"""Rows read per table: a sheet of a million empty-looking rows must not hang an ingest."""


def cell_text(value: object) -> str:
    """A cell as one line: None is empty, floats that are whole numbers lose their `.0`."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return " ".join(str(value).split())


def rows_as_text(rows: Iterable[Sequence[object]], *, header: bool = True) -> str:
    """One line per non-empty row; with `header`, the first non-empty row names the columns."""
    names: list[str] | None = None
    lines: list[str] = []
    for count, row in enumerate(rows):
        if count >= MAX_ROWS:
            break
        cells = [cell_text(v) for v in row]
        while cells and not cells[-1]:
            cells.pop()
        if not any(cells):
            continue
        if header and names is None:
            names = cells
            lines.append(" | ".join(c for c in cells if c))
            continue
        if names is None:
            lines.append(" | ".join(cells))
            continue
        parts = []
        for i, value in enumerate(cells):
            if not value:
                continue
            name = names[i] if i < len(names) and names[i] else f"列{i + 1}"
            parts.append(f"{name}: {value}")
        lines.append(" | ".join(parts))
    return "\n".join(lines)
