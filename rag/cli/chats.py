"""`rag chats list|export`: the app's saved conversations, outside the app."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rag.cli.terminal import emit_json, say
from rag.config import Settings

Subparsers = argparse._SubParsersAction


def add_chats(sub: Subparsers) -> None:
    p = sub.add_parser("chats", help="the app's saved conversations: list them, export one")
    chats = p.add_subparsers(dest="chats_command", required=True, metavar="ACTION")
    q = chats.add_parser("list", help="chats, newest first, with their ids")
    q.add_argument("--user", default=None, help="only this user's chats")
    q.add_argument("--json", action="store_true")
    q = chats.add_parser("export", help="one chat as Markdown or JSON (questions, answers, sources, scores)")
    q.add_argument("chat_id", metavar="CHAT_ID")
    q.add_argument("--format", choices=["md", "json"], default="md")
    q.add_argument("--out", type=Path, default=None, help="file to write (default: stdout)")
    q.add_argument("--json", action="store_true", help="same as --format json")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from rag.chats import ChatStore, export_dict, export_markdown

    chats = ChatStore.of(settings)
    if args.chats_command == "list":
        found = chats.list(args.user)
        if args.json:
            emit_json([c.as_dict() for c in found])
            return 0
        for c in found:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(c.updated))
            sys.stdout.write(f"{c.id}  {when}  {c.turns // 2:>3} questions  {c.user}  {c.title}\n")
        if not found:
            say("no chats yet: ask something in the app (`make run`)")
        return 0
    if args.json or args.format == "json":
        text = json.dumps(export_dict(chats, args.chat_id), ensure_ascii=False, indent=2) + "\n"
    else:
        text = export_markdown(chats, args.chat_id)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        say(f"wrote {args.out}")
    return 0
