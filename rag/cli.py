"""The `rag` command: parses arguments, calls the library, prints results.

Human output and progress go to stderr and stdout as a person reads them; `--json` prints exactly
one JSON document on stdout and nothing else there. Exit codes: 0 success, 1 nothing could be done
(bad settings, store or provider failure), 2 partial success (some files failed). Heavy imports
happen inside each command so `rag --help` is instant.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.config import Settings, get_settings
from rag.errors import RagError

Handler = Callable[[argparse.Namespace, Settings], int]
_COMMANDS: dict[str, Handler] = {}


def command(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _COMMANDS[name] = fn
        return fn

    return register


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def say(message: str) -> None:
    """A line for the person at the terminal (stderr, so stdout stays parseable)."""
    sys.stderr.write(message + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag",
        description="Ingest documents, search and ask them, and see the embeddings behind it.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", help="add or update documents (txt, md, html, pdf)")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.add_argument("--prune", action="store_true", help="delete documents whose files are gone")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("search", help="nearest chunks for a query, with scores")
    p.add_argument("query")
    p.add_argument("-k", type=int, default=None, help="number of results")
    p.add_argument("--mode", choices=["vector", "bm25", "hybrid"], default=None)
    p.add_argument("--mmr", action="store_true", help="diversify results (maximal marginal relevance)")
    p.add_argument("--threshold", type=float, default=None, help="minimum cosine similarity")
    p.add_argument("--source", action="append", default=None, help="only this source (repeatable)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("stats", help="collections, their models and sizes")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("delete", help="delete one ingested document by source or path")
    p.add_argument("source")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("reset", help="delete every collection and ingest record")
    p.add_argument("--yes", action="store_true", help="really do it")
    p.add_argument("--json", action="store_true")

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    as_json = getattr(args, "json", False)
    try:
        settings = get_settings()
        return _COMMANDS[args.command](args, settings)
    except RagError as exc:
        if as_json:
            emit_json({"error": str(exc), "kind": type(exc).__name__})
        else:
            say(f"error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except Exception as exc:  # pydantic validation of settings, among others
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):
            message = "invalid settings: " + "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
            )
            if as_json:
                emit_json({"error": message, "kind": "ConfigError"})
            else:
                say(f"error: {message}")
            return 1
        raise


@command("ingest")
def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from rag.indexing import Ingestor
    from rag.progress import terminal_progress

    ingestor = Ingestor(settings)
    info = ingestor.info
    say(f"embedding: {info.provider} {info.model} ({info.dims} dims) — {info.reason}")
    with terminal_progress("ingest", enabled=sys.stderr.isatty() or not args.json) as progress:
        report = ingestor.ingest(args.paths, prune=args.prune, progress=progress)
    data = report.as_dict()
    if args.json:
        emit_json(data)
    else:
        files, chunks = data["files"], data["chunks"]
        say(
            f"files: {files['read']} read, {files['unchanged']} unchanged, "
            f"{files['unsupported']} unsupported, {len(files['failed'])} failed"
        )
        say(
            f"chunks: {chunks['added']} added, {chunks['updated']} updated, "
            f"{chunks['skipped']} unchanged, {chunks['deleted']} deleted "
            f"→ {data['collection']} in {data['seconds']:.1f} s"
        )
        for failure in files["failed"]:
            say(f"  failed: {failure['path']}: {failure['reason']}")
    return 2 if report.failed else 0


@command("search")
def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from rag.retrieval import Searcher

    result = Searcher(settings).search(
        args.query, k=args.k, mode=args.mode, mmr=args.mmr, threshold=args.threshold,
        sources=args.source,
    )
    if args.json:
        emit_json({"query": result.query, "mode": result.mode,
                   "embedding": result.embedding.as_dict(),
                   "hits": [h.as_dict() for h in result.hits]})
        return 0
    for hit in result.hits:
        where = hit.source + (f" p.{hit.page}" if hit.page else "")
        preview = " ".join(hit.text.split())[:160]
        sys.stdout.write(f"{hit.rank:>2}. {hit.score:.3f}  {where}\n    {preview}\n")
    if not result.hits:
        say("no results above the threshold")
    return 0


@command("stats")
def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    from rag import store

    collections = store.list_collections(settings)
    data = {"store": store.describe(settings), "collections": [c.as_dict() for c in collections]}
    if args.json:
        emit_json(data)
        return 0
    described = data["store"]
    where = described.get("path") or f"{described.get('host')}:{described.get('port')}"
    sys.stdout.write(f"store: {described['mode']} ({where})\n")
    for c in collections:
        sys.stdout.write(f"  {c.name}: {c.count} chunks, {c.provider} {c.model}, {c.dims} dims\n")
    if not collections:
        sys.stdout.write("  (empty: run `rag ingest PATH`)\n")
    return 0


@command("delete")
def cmd_delete(args: argparse.Namespace, settings: Settings) -> int:
    from rag.indexing import Ingestor

    deleted = Ingestor(settings).delete_source(args.source)
    if args.json:
        emit_json({"source": args.source, "deleted": deleted})
    else:
        say(f"deleted {deleted} chunks of {args.source}")
    return 0


@command("reset")
def cmd_reset(args: argparse.Namespace, settings: Settings) -> int:
    from rag.indexing import reset

    if not args.yes:
        say("refusing to delete everything without --yes")
        return 1
    names = reset(settings)
    if args.json:
        emit_json({"deleted_collections": names})
    else:
        say(f"deleted {len(names)} collections: {', '.join(names) or '(none)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
