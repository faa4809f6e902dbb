"""`rag doctor`: settings, store and provider checked, each problem with its fix; exit 1 if any."""

from __future__ import annotations

import argparse
import sys

from rag.cli.terminal import emit_json, printable
from rag.config import Settings

Subparsers = argparse._SubParsersAction


def add_doctor(sub: Subparsers) -> None:
    p = sub.add_parser("doctor", help="check settings, store and provider; say how to fix problems")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from rag.doctor import diagnose
    from rag.doctor.report import render

    report = diagnose(settings)
    if args.json:
        emit_json(report.as_dict())
    else:
        sys.stdout.write(printable(render(report)) + "\n")
    return 0 if report.healthy else 1
