"""`rag eval`: recall@k and MRR@10 of retrieval on question-answering sets, with query latency.

Two inputs. SQuAD JSON (JSQuAD, XQuAD): every paragraph is a document and a question's gold
document is its paragraph; the paragraphs go into their own collection, `eval_<hash>_<model>_<dims>`
(reused while the file and model are unchanged), one document per paragraph, unchunked. JSONL
(`{"question", "source"}` per line): gold is the source file's chunks in the already-ingested main
collection. Either way questions run through the app's own `Searcher`, so the figures are the app's.
Hits are ranked by document (a chunk of a document already seen does not take a rank).
Query embeddings are computed in one batch first, so latency is retrieval as a user with a warm
embedding cache sees it; the batch's cost is reported separately.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rag import store
from rag.config import RetrievalModeName, Settings
from rag.embed.providers import EmbeddingInfo, get_embeddings, resolve
from rag.errors import EmptyStoreError, LoadError
from rag.eval_answers import AnswerStats, answer_all
from rag.progress import Progress, ProgressFn

log = logging.getLogger(__name__)

DOC_FORMAT = 2
"""Bumped when the paragraph-to-document rule changes, so eval collections are rebuilt."""
_CORPUS_PREFIXES = ("./", "docs_corpus/")
_EMBED_BATCH = 64


@dataclass(frozen=True)
class Question:
    text: str
    gold: str
    """The gold document's `source` (paragraph key for SQuAD, file path for JSONL)."""
    answers: tuple[str, ...] = ()
    """Gold answer strings (SQuAD files carry them; a JSONL line may, as `"answers": [...]`)."""


@dataclass
class Dataset:
    kind: str
    questions: list[Question]
    documents: list[tuple[str, str]] = field(default_factory=list)
    """(source, text) of each paragraph; empty for JSONL, whose documents are already ingested."""
    digest: str = ""


@dataclass
class EvalReport:
    mode: str
    questions: int
    documents: int
    k: int
    ranks: list[int | None]
    latencies_ms: list[float]
    embedding: EmbeddingInfo
    collection: str
    embed_questions_s: float = 0.0
    missing_sources: list[str] = field(default_factory=list)
    answers: AnswerStats | None = None
    """With `answers=True`: how the app's answerer did on the same questions."""

    def recall(self, at: int) -> float:
        return sum(1 for r in self.ranks if r is not None and r <= at) / max(len(self.ranks), 1)

    def mrr(self, at: int = 10) -> float:
        return sum(1 / r for r in self.ranks if r is not None and r <= at) / max(len(self.ranks), 1)

    def as_dict(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies_ms or [0.0])
        out: dict[str, Any] = {
            "mode": self.mode,
            "questions": self.questions,
            "documents": self.documents,
            "recall@1": round(self.recall(1), 4),
            "recall@5": round(self.recall(5), 4),
            "recall@10": round(self.recall(10), 4),
            "mrr@10": round(self.mrr(10), 4),
            "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 2),
                           "p95": round(float(np.percentile(lat, 95)), 2)},
            "embedding": self.embedding.as_dict(),
            "collection": self.collection,
            "k": self.k,
            "embed_questions_s": round(self.embed_questions_s, 2),
        }
        if self.missing_sources:
            out["missing_sources"] = self.missing_sources
        if self.answers is not None:
            out.update(self.answers.as_dict())
        return out


# --- reading QA files -----------------------------------------------------------------------------

def load(path: Path) -> Dataset:
    """A SQuAD JSON file or a QA JSONL file, told apart by content, not by name."""
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise LoadError(f"Cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise LoadError(
            f"{path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}).",
            "Save it as UTF-8 (e.g. `iconv -f SHIFT_JIS -t UTF-8 in.json > out.json`).",
        ) from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        return _squad(data)
    return _jsonl(raw, path)


def document_text(context: str) -> str:
    """A paragraph's document text: its context verbatim, JSQuAD's `title [SEP] body` included.

    Measured on JSQuAD dev (1,000 sampled questions, exact vector search, local model), MRR@10:
    verbatim 0.745, `title` newline `body` 0.737, `title。body` 0.740, body alone 0.729. The title
    helps; how it is joined is within noise, and BM25 scores all three joins the same, so the
    context is kept as the dataset has it.
    """
    return context


def _squad(data: dict[str, Any]) -> Dataset:
    docs: list[tuple[str, str]] = []
    questions: list[Question] = []
    for article in data["data"]:
        title = str(article.get("title", "")).strip() or "untitled"
        for para in article.get("paragraphs", []):
            source = f"{title}#{len(docs)}"
            docs.append((source, document_text(str(para.get("context", "")))))
            for qa in para.get("qas", []):
                text = str(qa.get("question", "")).strip()
                golds = tuple(str(a.get("text", "")) for a in qa.get("answers") or []
                              if isinstance(a, dict) and str(a.get("text", "")).strip())
                if text:
                    questions.append(Question(text, source, golds))
    if not docs or not questions:
        raise LoadError("The SQuAD file has no paragraphs with questions.")
    digest = hashlib.blake2b(
        json.dumps([DOC_FORMAT, docs], ensure_ascii=False).encode("utf-8"), digest_size=6
    ).hexdigest()
    return Dataset("squad", questions, docs, digest)


def _jsonl(raw: str, path: Path) -> Dataset:
    questions: list[Question] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            golds = tuple(str(a) for a in row.get("answers") or () if str(a).strip())
            questions.append(Question(str(row["question"]).strip(), normalise_source(str(row["source"])),
                                      golds))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise LoadError(
                f"{path}:{number}: expected SQuAD JSON or JSONL lines like "
                '{"question": "...", "source": "ja/01_x.md"}'
            ) from None
    if not questions:
        raise LoadError(f"{path} holds no questions.")
    return Dataset("jsonl", questions)


def normalise_source(source: str) -> str:
    source = source.replace("\\", "/")
    for prefix in _CORPUS_PREFIXES:
        while source.startswith(prefix):
            source = source[len(prefix):]
    return source


def same_source(chunk_source: str, gold: str) -> bool:
    """Whether a chunk's source names the gold file, whatever folder was ingested as the root."""
    chunk_source = normalise_source(chunk_source)
    return (chunk_source == gold or chunk_source.endswith("/" + gold)
            or gold.endswith("/" + chunk_source))


def sample(questions: list[Question], n: int | None, seed: int) -> list[Question]:
    if n is None or n >= len(questions):
        return list(questions)
    return random.Random(seed).sample(questions, n)


# --- the eval collection --------------------------------------------------------------------------

def eval_info(info: EmbeddingInfo, digest: str) -> EmbeddingInfo:
    """The model's info naming the eval collection of one dataset, so `Searcher` and `store` work as-is."""
    return replace(info, collection=f"{store.EVAL_PREFIX}{digest}_{info.model}_{info.dims}")


def ensure_collection(settings: Settings, info: EmbeddingInfo, dataset: Dataset,
                      progress: ProgressFn | None = None) -> int:
    """Write the paragraphs not yet in the eval collection (all of them the first time)."""
    from rag.retrieve import bm25

    coll = store.collection(settings, info)
    ids = [f"p{i}" for i in range(len(dataset.documents))]
    present = set(coll.get(ids=ids, include=[])["ids"]) if coll.count() else set()
    todo = [i for i, id_ in enumerate(ids) if id_ not in present]
    if not todo:
        return 0
    embeddings = get_embeddings(settings, info)
    for start in range(0, len(todo), _EMBED_BATCH):
        part = todo[start : start + _EMBED_BATCH]
        texts = [dataset.documents[i][1] for i in part]
        coll.upsert(
            ids=[ids[i] for i in part],
            documents=texts,
            embeddings=np.asarray(embeddings.embed_documents(texts), dtype=np.float32),
            metadatas=[{"source": dataset.documents[i][0], "paragraph": i} for i in part],
        )
        if progress:
            progress(Progress("embedding documents", len(present) + start + len(part), len(ids)))
    bm25.bump_version(settings, info.collection_name)
    return len(todo)


# --- running -------------------------------------------------------------------------------------

def first_gold_rank(sources: list[str], gold: str, *, exact: bool) -> int | None:
    """1-based rank of the gold document among distinct documents, or None."""
    seen: list[str] = []
    for source in sources:
        if source in seen:
            continue
        seen.append(source)
        if (source == gold) if exact else same_source(source, gold):
            return len(seen)
    return None


def evaluate(
    path: Path,
    settings: Settings,
    *,
    mode: RetrievalModeName | None = None,
    k: int = 10,
    max_questions: int | None = None,
    seed: int = 0,
    progress: ProgressFn | None = None,
    answers: bool = False,
) -> EvalReport:
    """Retrieval metrics of the file's questions; with `answers`, also the answer metrics of
    `rag.eval_answers` (retrieval at the default k, then the app's answerer)."""
    from rag.retrieve.searcher import Searcher

    mode = mode or settings.retrieval_mode
    dataset = load(path)
    questions = sample(dataset.questions, max_questions, seed)
    base = resolve(settings)
    missing: list[str] = []
    if dataset.kind == "squad":
        info: EmbeddingInfo = eval_info(base, dataset.digest)
        ensure_collection(settings, info, dataset, progress)
        searcher = Searcher(settings, info)
        documents = len(dataset.documents)
        fetch = k  # one document per paragraph: k hits are k distinct documents
    else:
        info = base
        searcher = Searcher(settings, info)
        if searcher.count() == 0:
            raise EmptyStoreError(
                f"The collection {info.collection_name} is empty: ingest the corpus the QA file "
                "is about first (`rag ingest docs_corpus`)."
            )
        sources = _collection_sources(searcher.collection)
        golds = sorted({q.gold for q in questions})
        missing = [g for g in golds if not any(same_source(s, g) for s in sources)]
        if len(missing) == len(golds):
            raise LoadError(
                f"None of the QA file's sources (e.g. {golds[0]!r}) is in {info.collection_name}; "
                "ingest the folder they are relative to (`rag ingest docs_corpus`)."
            )
        for gold in missing:
            log.warning("QA source %s is not in the collection; its questions count as misses", gold)
        documents = len(sources)
        fetch = k * 3  # several chunks per file: fetch more to fill k distinct documents

    started = time.perf_counter()
    texts = [q.text for q in questions]
    vectors = searcher.embeddings
    warm = getattr(vectors, "embed_queries", vectors.embed_documents)  # e5 reads questions as `query: `
    for start in range(0, len(texts), _EMBED_BATCH):
        warm(texts[start : start + _EMBED_BATCH])  # fills the cache for search()
        if progress:
            progress(Progress("embedding questions", min(start + _EMBED_BATCH, len(texts)), len(texts)))
    embed_s = time.perf_counter() - started

    ranks: list[int | None] = []
    latencies: list[float] = []
    for done, question in enumerate(questions, start=1):
        t0 = time.perf_counter()
        result = searcher.search(question.text, k=fetch, mode=mode)
        latencies.append((time.perf_counter() - t0) * 1000)
        ranks.append(first_gold_rank([h.source for h in result.hits], question.gold,
                                     exact=dataset.kind == "squad"))
        if progress and (done % 25 == 0 or done == len(questions)):
            progress(Progress("searching", done, len(questions)))
    ranks = [r if r is not None and r <= k else None for r in ranks]
    stats = None
    if answers:
        stats = answer_all(settings, searcher, questions, mode=mode, exact=dataset.kind == "squad",
                           progress=progress)
    return EvalReport(mode, len(questions), documents, k, ranks, latencies, base,
                      info.collection_name, embed_s, missing, stats)


def _collection_sources(collection) -> set[str]:
    sources: set[str] = set()
    offset = 0
    while True:
        got = collection.get(include=["metadatas"], limit=5000, offset=offset)
        sources.update(str((m or {}).get("source", "")) for m in got["metadatas"])
        if len(got["ids"]) < 5000:
            return sources
        offset += 5000
