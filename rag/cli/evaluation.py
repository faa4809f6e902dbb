"""`rag eval`: retrieval (and optionally answer) quality on a QA file or on the app's feedback."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rag.cli.terminal import emit_json, printable, say, table
from rag.config import Settings

Subparsers = argparse._SubParsersAction


def add_eval(sub: Subparsers) -> None:
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
    p.set_defaults(run=evaluate)


def evaluate(args: argparse.Namespace, settings: Settings) -> int:
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
        return _unanswerable(args, settings)
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
        ("file", printable(str(args.file))), ("mode", data["mode"]),
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
        rows += [(name, "n/a" if data[name] is None else f"{data[name]:.3f}")
                 for name in ("lead_contains", "sentence_precision", "off_topic_answers")]
    table(rows)
    for source in data.get("missing_sources", []):
        say(f"warning: {source} is not in the collection; its questions count as misses")
    return 0


def _unanswerable(args: argparse.Namespace, settings: Settings) -> int:
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
    table([("file", str(args.file)), ("asked of", data["collection"]), ("mode", data["mode"]),
           ("questions", str(data["questions"])), ("not_found", f"{data['not_found']:.3f}"),
           ("mean_answer_chars", f"{data['mean_answer_chars']:.0f}")])
    for example in data["answered_examples"]:
        say(f"answered anyway: {example['question']} -> {example['answer'][:120]}")
    return 0
