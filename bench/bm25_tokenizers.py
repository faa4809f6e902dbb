"""BM25 tokenizer comparison on the SQuAD-format dev sets: quality and tokenizing speed.

Builds `rag.retrieve.bm25.BM25Index` over each set's paragraphs (documents as `rag.evaluate` writes them)
with several tokenizers and scores a seeded sample of questions (the same sample `rag eval
--max-questions N --seed S` draws). Morphological analyzers are optional: Janome and SudachiPy
(with sudachidict_core) are used when importable, e.g. after
`pip install --target /tmp/tokbench janome sudachipy sudachidict_core` and `--extra-path /tmp/tokbench`.

    .venv/bin/python bench/bm25_tokenizers.py /work/shared/eval/jsquad-dev.json --max-questions 1000
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

_WORD = re.compile(r"[^\W_]+")


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def words(text: str) -> list[str]:
    return _WORD.findall(_nfkc(text))


def per_script_bigrams(text: str) -> list[str]:
    """Bigrams only inside kanji/kana stretches, words elsewhere, no unigrams (a first version)."""
    from rag.retrieve.bm25 import _IS_CJK, _RUN, _SPLIT

    out: list[str] = []
    for run in _RUN.findall(_nfkc(text)):
        for part in _SPLIT.findall(run):
            if _IS_CJK.match(part) and len(part) > 1:
                out.extend(part[i : i + 2] for i in range(len(part) - 1))
            else:
                out.append(part)
    return out


def with_kana_unigrams(text: str) -> list[str]:
    from rag.retrieve.bm25 import _IS_CJK, _KANJI, tokenize

    return tokenize(text) + [c for c in _nfkc(text) if _IS_CJK.match(c) and not _KANJI.match(c)]


def all_char_bigrams(text: str) -> list[str]:
    """Bigrams over the whole normalised text, spaces and punctuation removed (the reference's)."""
    s = "".join(words(text))
    return [s[i : i + 2] for i in range(len(s) - 1)]


def _s_stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def stemmed(text: str) -> list[str]:
    from rag.retrieve.bm25 import tokenize

    return [_s_stem(t) for t in tokenize(text)]


def janome_tokenizers() -> dict[str, Callable[[str], list[str]]]:
    try:
        from janome.tokenizer import Tokenizer
    except ImportError:
        return {}
    tok = Tokenizer()

    def surface(text: str) -> list[str]:
        return [t.lower() for t in tok.tokenize(_nfkc(text), wakati=True) if _WORD.search(t)]

    def content(text: str) -> list[str]:
        keep = ("名詞", "動詞", "形容詞", "副詞")
        return [
            (t.base_form if t.base_form != "*" else t.surface).lower()
            for t in tok.tokenize(_nfkc(text))
            if t.part_of_speech.split(",")[0] in keep and _WORD.search(t.surface)
        ]

    return {"janome surface": surface, "janome content base forms": content}


def sudachi_tokenizers() -> dict[str, Callable[[str], list[str]]]:
    try:
        from sudachipy import Dictionary, SplitMode
    except ImportError:
        return {}
    tok = Dictionary(dict="core").create()

    def mode(split) -> Callable[[str], list[str]]:
        def run(text: str) -> list[str]:
            return [m.normalized_form().lower() for m in tok.tokenize(_nfkc(text)[:40000], split)
                    if _WORD.search(m.surface())]

        return run

    return {"sudachi A normalized": mode(SplitMode.A), "sudachi C normalized": mode(SplitMode.C)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--max-questions", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--extra-path", default=None, help="folder with optional analyzers")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.extra_path:
        sys.path.append(args.extra_path)

    from rag.evaluate import load, sample
    from rag.retrieve.bm25 import BM25Index, tokenize

    dataset = load(args.file)
    questions = sample(dataset.questions, args.max_questions, args.seed)
    ids = [s for s, _ in dataset.documents]
    texts = [t for _, t in dataset.documents]
    candidates: dict[str, Callable[[str], list[str]]] = {
        "rag.retrieve.bm25.tokenize (run bigrams+kanji+words)": tokenize,
        "per-script bigrams + words": per_script_bigrams,
        "rag.retrieve.bm25.tokenize + kana unigrams": with_kana_unigrams,
        "bigrams over all text": all_char_bigrams,
        "words only": words,
        "tokenize + plural stemming": stemmed,
        **janome_tokenizers(),
        **sudachi_tokenizers(),
    }
    results = []
    for name, fn in candidates.items():
        started = time.perf_counter()
        index = BM25Index.build(ids, texts, tokenizer=fn)
        build_s = time.perf_counter() - started
        ranks = []
        started = time.perf_counter()
        for q in questions:
            top = [ids[row] for row, _ in index.top(q.text, 10)]
            ranks.append(top.index(q.gold) + 1 if q.gold in top else None)
        query_ms = (time.perf_counter() - started) * 1000 / len(questions)
        n = len(ranks)
        row = {
            "tokenizer": name,
            "R@1": sum(r == 1 for r in ranks if r) / n,
            "R@5": sum(1 for r in ranks if r and r <= 5) / n,
            "R@10": sum(1 for r in ranks if r) / n,
            "MRR@10": sum(1 / r for r in ranks if r) / n,
            "chars_per_s": sum(map(len, texts)) / build_s,
            "query_ms": query_ms,
        }
        results.append(row)
        print(f"{name:<42} R@1 {row['R@1']:.3f}  R@5 {row['R@5']:.3f}  R@10 {row['R@10']:.3f}  "
              f"MRR@10 {row['MRR@10']:.3f}  {row['chars_per_s'] / 1000:8.0f} k chars/s  "
              f"{query_ms:.2f} ms/query", flush=True)
    if args.json:
        print(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
