"""Everything "trust" adds to an answer, as one JSON-ready dict for `rag ask --json`.

`prompt` (LLM mode: the messages with cl100k counts and an estimated cost), `grounding` (each
answer sentence: the source rank, the supporting sentence, the score), `confidence` (exp of the
mean logprob, when the server returned logprobs), `retrieval_note`, and per source
`matched_terms` (term, contribution), `percentile` and `fusion`. The same functions feed the app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rag.answer.grounding import confidence, ground
from rag.lens import keyword_why, prompt_view, score_meaning

if TYPE_CHECKING:
    from rag.answer.answerer import Answer
    from rag.retrieve.searcher import Searcher


def trust_fields(answer: Answer, searcher: Searcher) -> dict[str, Any]:
    """The trust fields of `answer`, and its sources with theirs (replacing `sources`)."""
    from rag.lens import collection
    from rag.retrieve import bm25

    hits = answer.search.hits
    sources = [h.as_dict() for h in hits]
    sims = None
    if hits:
        vectors = collection.vectors_for(searcher.settings, searcher.info, searcher.collection)
        sims = vectors.similarities(answer.search.query_vector)
        index = bm25.index_for(searcher.settings, searcher.collection) \
            if any(h.bm25_score is not None for h in hits) else None
        for hit, out in zip(hits, sources, strict=True):
            out["percentile"] = round(score_meaning.percentile(sims, hit.score), 2)
            if index is not None:
                out["matched_terms"] = [
                    {"term": m.term, "contribution": round(m.contribution, 6), "tf": m.tf,
                     "idf": round(m.idf, 6)}
                    for m in keyword_why.matched_terms(index, answer.search.query, hit)]
    report = prompt_view.prompt_report(answer)
    note = score_meaning.retrieval_note(hits, sims, answer.search.embedding.model) \
        if sims is not None else None
    conf = confidence(answer.logprobs)
    return {
        "sources": sources,
        "prompt": report.as_dict() if report else None,
        "grounding": [s.as_dict() for s in ground(answer.text, hits)],
        "confidence": None if conf is None else round(conf, 6),
        "retrieval_note": note.text(answer.lang) if note else None,
        "score_scale": score_meaning.model_line(answer.search.embedding.model),
    }
