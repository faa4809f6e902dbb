"""The `rag` command: parses arguments, calls the library, prints results.

One module per group of commands (`documents`: ingest/stats/delete/reset, `query`: search/ask,
`lens`: embed/map/next, `evaluation`, `chats`, `doctor`), each adding its subparsers and handlers;
`terminal` holds the printing they share. Human output and progress go to stderr and stdout as a
person reads them; `--json` prints exactly one JSON document on stdout and nothing else there. Exit
codes: 0 success, 1 nothing could be done (bad settings, store or provider failure), 2 partial
success (some files failed). Heavy imports happen inside each command so `rag --help` is instant.
"""

from __future__ import annotations

import argparse

from rag.cli import chats, doctor, documents, evaluation, lens, query
from rag.cli.terminal import check_text_args, report_failure, say
from rag.config import Settings, get_settings

_COMMANDS = (
    documents.add_ingest, query.add_search, query.add_ask, lens.add_embed, lens.add_map,
    lens.add_next, evaluation.add_eval, chats.add_chats, documents.add_stats, documents.add_delete,
    documents.add_reset, doctor.add_doctor,
)
"""Each adds one subcommand whose `run` default is its handler; in the order `rag --help` lists."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag",
        description="Ingest documents, search and ask them, and see the embeddings behind it.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings: Settings | None = None
    try:
        check_text_args(args)
        settings = get_settings()
        return args.run(args, settings)
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except Exception as exc:  # pydantic validation of settings, failures from below, our own
        code = report_failure(exc, settings, getattr(args, "json", False))
        if code is None:
            raise
        return code

