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
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.config import Settings, get_settings
from rag.retrieve.options import SearchOptions

Handler = Callable[[argparse.Namespace, Settings], int]
_COMMANDS: dict[str, Handler] = {}


def command(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _COMMANDS[name] = fn
        return fn

    return register


def emit_json(data: Any) -> None:
    sys.stdout.write(_printable(json.dumps(data, ensure_ascii=False, indent=2)) + "\n")


def say(message: str) -> None:
    """A line for the person at the terminal (stderr, so stdout stays parseable)."""
    sys.stderr.write(_printable(message) + "\n")


def _printable(text: str) -> str:
    """Secrets masked; bytes of a non-UTF-8 file name (lone surrogates) as `\\xNN`, not a crash."""
    from rag.secrets import mask_text

    text = mask_text(text)
    if any("\udc80" <= ch <= "\udcff" for ch in text):
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


_TEXT_ARGS = ("query", "question", "text")


def _check_text_args(args: argparse.Namespace) -> None:
    """A question typed in a terminal that does not send UTF-8 arrives as undecodable bytes."""
    from rag.errors import QueryError

    for name in _TEXT_ARGS:
        value = getattr(args, name, None)
        if isinstance(value, str) and any("\udc80" <= ch <= "\udcff" for ch in value):
            raise QueryError(
                f"The {name} is not UTF-8 text (the terminal sent another encoding).",
                "Use a UTF-8 terminal or locale (e.g. `export LANG=C.UTF-8`) and type it again.",
            )


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag",
        description="Ingest documents, search and ask them, and see the embeddings behind it.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", help="add or update documents (txt, md, html, pdf, docx, pptx, xlsx, csv)")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.add_argument("--prune", action="store_true", help="delete documents whose files are gone")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("search", help="nearest chunks for a query, with scores")
    p.add_argument("query")
    add_retrieval_options(p)

    p = sub.add_parser("ask", help="answer a question from the documents, with citations")
    p.add_argument("question")
    add_retrieval_options(p)

    p = sub.add_parser("embed", help="a text's cl100k_base tokens and its embedding vector")
    p.add_argument("text")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("map", help="2-D/3-D projection of the collection as an offline HTML page")
    p.add_argument("--method", choices=["pca", "tsne", "umap"], default="pca")
    p.add_argument("--dims", type=int, choices=[2, 3], default=2)
    p.add_argument("--query", default=None, help="place this text and its nearest chunks on the map")
    p.add_argument("-k", type=int, default=None, help="hits to mark for --query")
    p.add_argument("--out", type=Path, default=None, help="HTML file to write (default: rag-map.html)")
    p.add_argument("--max-points", type=int, default=3000, help="sample larger collections to this")
    p.add_argument("--json", action="store_true", help="print the points as JSON (writes --out too if given)")

    p = sub.add_parser("next", help="a language model's next-token probabilities for a text (offline)")
    p.add_argument("text")
    p.add_argument("--top", type=int, default=20, help="how many candidates to list (default 20)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="reshape the distribution: <1 sharper, >1 flatter, 0 = always the top token")
    p.add_argument("--sample", type=int, default=0, metavar="N", help="also draw N random next tokens")
    p.add_argument("--seed", type=int, default=None, help="seed for --sample")
    p.add_argument("--score", action="store_true",
                   help="instead: each token's log-probability given the text before it, and the perplexity")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("eval", help="recall@k and MRR of retrieval on a QA file (SQuAD JSON or JSONL)")
    p.add_argument("file", type=Path, metavar="FILE", nargs="?")
    p.add_argument("--from-feedback", action="store_true",
                   help="measure the app's questions whose sources were marked right (writes --out)")
    p.add_argument("--out", type=Path, default=None,
                   help="with --from-feedback: where the QA JSONL goes (default RAG_DATA_DIR/feedback-qa.jsonl)")
    p.add_argument("--mode", choices=["vector", "bm25", "hybrid"], default=None, help="retrieval mode")
    p.add_argument("--k", type=int, default=10, help="depth of the ranking scored (default 10)")
    p.add_argument("--max-questions", type=int, default=None, help="a seeded sample of this many")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    p.add_argument("--answers", action="store_true",
                   help="also answer every question with the app's answerer: answer_contains, mean_answer_chars")
    p.add_argument("--unanswerable", action="store_true",
                   help="ask the file's questions against the main collection, which cannot answer them: "
                        "share answered 'not found'")
    p.add_argument("--json", action="store_true")

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

    p = sub.add_parser("stats", help="collections, their models and sizes")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("delete", help="delete one ingested document by source or path")
    p.add_argument("source")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("reset", help="delete every collection and ingest record")
    p.add_argument("--yes", action="store_true", help="really do it")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("doctor", help="check settings, store and provider; say how to fix problems")
    p.add_argument("--json", action="store_true")

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    as_json = getattr(args, "json", False)
    settings: Settings | None = None
    try:
        _check_text_args(args)
        settings = get_settings()
        return _COMMANDS[args.command](args, settings)
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except Exception as exc:  # pydantic validation of settings, failures from below, our own
        from pydantic import ValidationError

        from rag.failures import explain

        if isinstance(exc, ValidationError):
            message, kind, code = "invalid settings: " + "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
            ), "ConfigError", 1
        else:
            error = explain(exc, settings)
            if error is None:
                raise
            message, kind, code = str(error), type(error).__name__, error.exit_code
        if as_json:
            emit_json({"error": message, "kind": kind})
        else:
            say(f"error: {message}")
        return code


@command("ingest")
def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
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


@command("search")
def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
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


@command("ask")
def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
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


@command("embed")
def cmd_embed(args: argparse.Namespace, settings: Settings) -> int:
    from rag.lens.report import embed_report

    data = embed_report(args.text, settings)
    if args.json:
        emit_json(data)
        return 0
    tokens = data["tokens"]
    chars = len(args.text)
    sys.stdout.write(f"{data['encoding']}: {len(tokens)} tokens, {chars} chars "
                     f"({chars / max(len(tokens), 1):.2f} chars/token)\n")
    sys.stdout.write(" ".join(f"{t['text']}({t['id']})" for t in tokens) + "\n")
    emb, vector = data["embedding"], data["vector"]
    head = ", ".join(f"{x:+.4f}" for x in vector[:8])
    sys.stdout.write(f"{emb['provider']} {emb['model']}: {emb['dims']} dims, norm {data['norm']:.4f}, "
                     f"min {min(vector):+.4f}, max {max(vector):+.4f}\n[{head}, …]\n")
    return 0


@command("map")
def cmd_map(args: argparse.Namespace, settings: Settings) -> int:
    from rag.lens import collection, plots, projection
    from rag.retrieve.searcher import Searcher

    if args.max_points < 1:
        say("--max-points must be at least 1")
        return 1
    searcher = Searcher(settings)
    vectors = collection.load_vectors(
        searcher.collection, collection.collection_key(settings, searcher.info, searcher.collection))
    query_vector, hits = None, []
    if args.query:
        result = searcher.search(args.query, k=args.k, mode="vector")
        query_vector, hits = result.query_vector, result.hits
    data = projection.build_map(vectors, method=args.method, dims=args.dims, query=query_vector,
                             query_text=args.query or "", hits=hits, max_points=args.max_points)
    out = args.out or (None if args.json else Path("rag-map.html"))
    if out is not None:
        title = f"rag map — {searcher.info.model}" + (f" — {args.query}" if args.query else "")
        page = plots.standalone_html(plots.projection(data, title=title, legend_3d=True), title=title)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
    if args.json:
        emit_json({**data.as_dict(), **({"out": str(out)} if out else {})})
        return 0
    say(f"{data.method} {data.dims}-D map of {sum(p.kind != 'query' for p in data.points)} of "
        f"{data.total} chunks ({searcher.info.model}) in {data.seconds:.1f} s"
        + (f"; {data.note}" if data.note else ""))
    say(f"wrote {out} (open it in a browser; works offline)")
    return 0


@command("next")
def cmd_next(args: argparse.Namespace, settings: Settings) -> int:
    import numpy

    from rag.lens.nexttoken import load_model

    model = load_model(settings.lm_cache_dir)
    if args.score:
        score = model.score(args.text)
        if args.json:
            emit_json({"model": model.name, "text": args.text, **score.as_dict()})
            return 0
        for t in score.tokens:
            sys.stdout.write(f"{t.id:>7} {t.piece!r:<16} logprob {t.logprob:8.3f}  p {t.prob:6.1%}  "
                             f"rank {t.rank:<6} top {t.top!r}\n")
        sys.stdout.write(f"{len(score.tokens)} tokens, mean logprob {score.mean_logprob:.3f}, "
                         f"perplexity {score.perplexity:.2f}\n")
        return 0
    if args.sample < 0:
        say("--sample must be 0 or more")
        return 1
    dist = model.distribution(args.text, top=args.top, temperature=args.temperature)
    rng = numpy.random.default_rng(args.seed) if args.sample else None
    samples = [model.sample(dist, rng) for _ in range(args.sample)]
    if args.json:
        data = {"model": model.name, "text": args.text, **dist.as_dict()}
        if args.sample:
            data["samples"] = [c.as_dict() for c in samples]
        emit_json(data)
        return 0
    sys.stdout.write(" ".join(f"{t.piece}({t.id})" for t in dist.tokens) + "\n")
    sys.stdout.write(f"{model.name}, temperature {dist.temperature:g}, entropy "
                     f"{dist.entropy_bits:.2f} bits, {dist.seconds:.2f} s\n")
    for c in dist.candidates:
        bar = "█" * round(c.prob * 40)
        sys.stdout.write(f"{c.rank:>3}. {c.text!r:<18} {c.id:>7} {c.prob:7.2%} {bar}\n")
    for c in samples:
        sys.stdout.write(f"sample: {c.text!r} (rank {c.rank}, p {c.prob:.2%})\n")
    return 0


@command("eval")
def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from rag.evaluate import evaluate
    from rag.progress import terminal_progress

    if args.k < 1 or (args.max_questions is not None and args.max_questions < 1):
        say("--k and --max-questions must be at least 1")
        return 1
    if args.from_feedback == (args.file is not None):
        say("give either a QA FILE or --from-feedback")
        return 1
    if args.from_feedback:
        from rag.chats import ChatStore, write_feedback_qa

        args.file = args.out or settings.data_dir / "feedback-qa.jsonl"
        count = write_feedback_qa(ChatStore.of(settings), args.file)
        say(f"{count} questions with a source marked right → {args.file}")
    if args.unanswerable:
        return _eval_unanswerable(args, settings)
    with terminal_progress("eval", enabled=sys.stderr.isatty() or not args.json) as progress:
        report = evaluate(args.file, settings, mode=args.mode, k=args.k,
                          max_questions=args.max_questions, seed=args.seed,
                          progress=progress, answers=args.answers)
    data = report.as_dict()
    if args.json:
        emit_json(data)
        return 0
    emb, lat = data["embedding"], data["latency_ms"]
    rows = [
        ("file", _printable(str(args.file))), ("mode", data["mode"]),
        ("embedding", f"{emb['provider']} {emb['model']} ({emb['dims']} dims)"),
        ("collection", data["collection"]),
        ("questions", str(data["questions"])), ("documents", str(data["documents"])),
        ("recall@1", f"{data['recall@1']:.3f}"), ("recall@5", f"{data['recall@5']:.3f}"),
        ("recall@10", f"{data['recall@10']:.3f}"), ("MRR@10", f"{data['mrr@10']:.3f}"),
        ("latency p50", f"{lat['p50']:.1f} ms"), ("latency p95", f"{lat['p95']:.1f} ms"),
    ]
    if args.answers:
        contains = data["answer_contains"]
        rows += [
            ("answers", f"{data['answer_mode']}, k={data['answer_k']}"),
            ("answer_contains", "n/a (no gold answer strings)" if contains is None else f"{contains:.3f}"),
            ("mean_answer_chars", f"{data['mean_answer_chars']:.0f}"),
            ("answered", f"{data['answered']:.3f}"), ("cites_gold", f"{data['cites_gold']:.3f}"),
        ]
    _table(rows)
    for source in data.get("missing_sources", []):
        say(f"warning: {source} is not in the collection; its questions count as misses")
    return 0


def _eval_unanswerable(args: argparse.Namespace, settings: Settings) -> int:
    from rag.eval_answers import evaluate_unanswerable
    from rag.progress import terminal_progress

    with terminal_progress("eval", enabled=sys.stderr.isatty() or not args.json) as progress:
        report = evaluate_unanswerable(args.file, settings, mode=args.mode,
                                       max_questions=args.max_questions, seed=args.seed,
                                       progress=progress)
    data = report.as_dict()
    if args.json:
        emit_json(data)
        return 0
    _table([("file", str(args.file)), ("asked of", data["collection"]), ("mode", data["mode"]),
            ("questions", str(data["questions"])), ("not_found", f"{data['not_found']:.3f}"),
            ("mean_answer_chars", f"{data['mean_answer_chars']:.0f}")])
    for example in data["answered_examples"]:
        say(f"answered anyway: {example['question']} -> {example['answer'][:120]}")
    return 0


def _table(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows) + 1
    for name, value in rows:
        sys.stdout.write(f"{name:<{width}} {value}\n")



@command("chats")
def cmd_chats(args: argparse.Namespace, settings: Settings) -> int:
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
    from rag.ingest.pipeline import Ingestor

    deleted = Ingestor(settings).delete_source(args.source)
    if args.json:
        emit_json({"source": args.source, "deleted": deleted})
    else:
        say(f"deleted {deleted} chunks of {args.source}")
    return 0


@command("reset")
def cmd_reset(args: argparse.Namespace, settings: Settings) -> int:
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


@command("doctor")
def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from rag.doctor import diagnose, render

    report = diagnose(settings)
    if args.json:
        emit_json(report.as_dict())
    else:
        sys.stdout.write(_printable(render(report)) + "\n")
    return 0 if report.healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
