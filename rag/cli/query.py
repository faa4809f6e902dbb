"""`rag search` and `rag ask`: one question, the same retrieval flags, hits or a cited answer."""

from __future__ import annotations

import argparse
import sys

from rag.cli.terminal import emit_json, say
from rag.config import Settings
from rag.retrieve.options import SearchOptions

Subparsers = argparse._SubParsersAction


def add_retrieval_options(p: argparse.ArgumentParser) -> None:
    """The options `search` and `ask` share, so both retrieve the same way."""
    p.add_argument("-k", type=int, default=None, help="number of chunks to retrieve")
    p.add_argument("--mode", choices=["vector", "bm25", "hybrid"], default=None, help="retrieval mode")
    p.add_argument("--mmr", action="store_true", help="diversify results (maximal marginal relevance)")
    p.add_argument("--threshold", type=float, default=None, help="minimum cosine similarity")
    p.add_argument("--source", action="append", default=None, help="only this source (repeatable)")
    p.add_argument("--json", action="store_true")


def options_from(args: argparse.Namespace) -> SearchOptions:
    """The `SearchOptions` that `add_retrieval_options` flags spell."""
    return SearchOptions().with_(k=args.k, mode=args.mode, mmr=args.mmr,
                                 threshold=args.threshold, sources=args.source)


def add_search(sub: Subparsers) -> None:
    p = sub.add_parser("search", help="nearest chunks for a query, with scores")
    p.add_argument("query")
    add_retrieval_options(p)
    p.set_defaults(run=search)


def add_ask(sub: Subparsers) -> None:
    p = sub.add_parser("ask", help="answer a question from the documents, with citations")
    p.add_argument("question")
    add_retrieval_options(p)
    p.set_defaults(run=ask)


def search(args: argparse.Namespace, settings: Settings) -> int:
    from rag.retrieve.searcher import Searcher

    result = Searcher(settings).search(
        args.query, options_from(args),
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


def ask(args: argparse.Namespace, settings: Settings) -> int:
    from rag.answer.answerer import EXTRACTIVE_LABEL, Answer, Answerer
    from rag.lang import lang_of

    answerer = Answerer(settings)
    info, lang = answerer.info, lang_of(args.question)
    if info.mode == "extractive":
        say(EXTRACTIVE_LABEL[lang])
    else:
        say(f"llm: {info.model} — {info.reason}")
    answer: Answer | None = None
    for item in answerer.stream(args.question, options=options_from(args)):
        if isinstance(item, Answer):
            answer = item
        elif not args.json:
            sys.stdout.write(item)
            sys.stdout.flush()
    assert answer is not None
    if args.json:
        from rag.lens.trust_report import trust_fields

        emit_json({**answer.as_dict(), **trust_fields(answer, answerer.searcher)})
        return 0
    sys.stdout.write("\n\n")
    for hit in answer.search.hits:
        mark = "*" if hit.rank in answer.citations else " "
        where = hit.source + (f" p.{hit.page}" if hit.page else "")
        sys.stdout.write(f"{mark}[{hit.rank}] {hit.score:.3f}  {where}\n")
    return 0
