"""A terminal progress bar for long library calls, on stderr so `--json` output stays clean."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def terminal_progress(label: str, *, enabled: bool = True) -> Iterator[Callable[[Any], None]]:
    """Yield a callback taking objects with `files_done`/`files_total`-style fields.

    Accepts any progress event with `done`/`total` or `files_done`/`files_total` attributes, and
    an optional `chunks` count shown beside the bar.
    """
    if not enabled:
        yield lambda _event: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[extra]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(file=sys.stderr), transient=False) as bar:
        task = bar.add_task(label, total=None, extra="")

        def update(event: Any) -> None:
            done = getattr(event, "files_done", getattr(event, "done", 0))
            total = getattr(event, "files_total", getattr(event, "total", None))
            chunks = getattr(event, "chunks", None)
            bar.update(task, completed=done, total=total,
                       extra=f"{chunks} chunks" if chunks is not None else "")

        yield update
