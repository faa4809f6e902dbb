"""Progress of long library calls: one event type, and a terminal bar on stderr for the CLI.

Ingest and eval both report `Progress`; the CLI draws it with rich on stderr (so `--json` output
stays clean) and the app with `st.progress`. A new `stage` starts a new line on the terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """`done` of `total` units of `stage` finished; `chunks` and `item` when there is one."""

    stage: str
    done: int
    total: int | None
    chunks: int | None = None
    item: str = ""


ProgressFn = Callable[[Progress], None]


@contextmanager
def terminal_progress(label: str, *, enabled: bool = True) -> Iterator[ProgressFn]:
    """Yield a callback that draws `Progress` events as a bar; each new stage is named once."""
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

        stage = [label]

        def update(event: Progress) -> None:
            if event.stage != stage[0]:
                stage[0] = event.stage
                bar.console.print(f"{event.stage} ({event.total})")
            bar.update(task, completed=event.done, total=event.total,
                       extra=f"{event.chunks} chunks" if event.chunks is not None else "")

        yield update
