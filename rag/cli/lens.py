"""`rag embed`, `map`, `next`: the tokens, vectors and next-token probabilities behind an answer."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rag.cli.terminal import emit_json, say
from rag.config import Settings

Subparsers = argparse._SubParsersAction


def add_embed(sub: Subparsers) -> None:
    p = sub.add_parser("embed", help="a text's cl100k_base tokens and its embedding vector")
    p.add_argument("text")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=embed)


def add_map(sub: Subparsers) -> None:
    p = sub.add_parser("map", help="2-D/3-D projection of the collection as an offline HTML page")
    p.add_argument("--method", choices=["pca", "tsne", "umap"], default="pca")
    p.add_argument("--dims", type=int, choices=[2, 3], default=2)
    p.add_argument("--query", default=None, help="place this text and its nearest chunks on the map")
    p.add_argument("-k", type=int, default=None, help="hits to mark for --query")
    p.add_argument("--out", type=Path, default=None, help="HTML file to write (default: rag-map.html)")
    p.add_argument("--max-points", type=int, default=3000, help="sample larger collections to this")
    p.add_argument("--json", action="store_true", help="print the points as JSON (writes --out too if given)")
    p.set_defaults(run=map_)


def add_next(sub: Subparsers) -> None:
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
    p.set_defaults(run=next_)


def embed(args: argparse.Namespace, settings: Settings) -> int:
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


def map_(args: argparse.Namespace, settings: Settings) -> int:
    from rag.lens.map_page import collection_map

    if args.max_points < 1:
        say("--max-points must be at least 1")
        return 1
    drawn = collection_map(settings, method=args.method, dims=args.dims, query=args.query or "",
                           k=args.k, max_points=args.max_points)
    data = drawn.data
    out = args.out or (None if args.json else Path("rag-map.html"))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(drawn.html(), encoding="utf-8")
    if args.json:
        emit_json({**data.as_dict(), **({"out": str(out)} if out else {})})
        return 0
    say(f"{data.method} {data.dims}-D map of {sum(p.kind != 'query' for p in data.points)} of "
        f"{data.total} chunks ({drawn.model}) in {data.seconds:.1f} s"
        + (f"; {data.note}" if data.note else ""))
    say(f"wrote {out} (open it in a browser; works offline)")
    return 0


def next_(args: argparse.Namespace, settings: Settings) -> int:
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
