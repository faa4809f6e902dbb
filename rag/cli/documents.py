"""`rag ingest`, `stats`, `delete`, `reset`: what is in the store and how it gets there."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rag.cli.terminal import emit_json, say
from rag.config import Settings

Subparsers = argparse._SubParsersAction


def add_ingest(sub: Subparsers) -> None:
    p = sub.add_parser("ingest", help="add or update documents (txt, md, html, pdf, docx, pptx, xlsx, csv)")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.add_argument("--prune", action="store_true", help="delete documents whose files are gone")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=ingest)


def add_stats(sub: Subparsers) -> None:
    p = sub.add_parser("stats", help="collections, their models and sizes")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=stats)


def add_delete(sub: Subparsers) -> None:
    p = sub.add_parser("delete", help="delete one ingested document by source or path")
    p.add_argument("source")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=delete)


def add_reset(sub: Subparsers) -> None:
    p = sub.add_parser("reset", help="delete every collection and ingest record")
    p.add_argument("--yes", action="store_true", help="really do it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=reset)


def ingest(args: argparse.Namespace, settings: Settings) -> int:
    from rag.ingest.pipeline import Ingestor
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
        for flag in files["flagged"]:
            where = f"page {flag['page']}: " if flag["page"] is not None else ""
            say(f"  garbled? {flag['path']}: {where}{flag['reason']}")
    return 2 if report.failed else 0


def stats(args: argparse.Namespace, settings: Settings) -> int:
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


def delete(args: argparse.Namespace, settings: Settings) -> int:
    from rag.ingest.pipeline import Ingestor

    deleted = Ingestor(settings).delete_source(args.source)
    if args.json:
        emit_json({"source": args.source, "deleted": deleted})
    else:
        say(f"deleted {deleted} chunks of {args.source}")
    return 0


def reset(args: argparse.Namespace, settings: Settings) -> int:
    from rag.ingest.pipeline import reset

    if not args.yes:
        say("refusing to delete everything without --yes")
        return 1
    names = reset(settings)
    if args.json:
        emit_json({"deleted_collections": names})
    else:
        say(f"deleted {len(names)} collections: {', '.join(names) or '(none)'}")
    return 0
