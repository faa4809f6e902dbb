"""Okapi BM25 over segments of raw term counts, weighted at query time for the query's terms only.

Scoring reads, for each of the query's few terms, its postings in every segment, and weighs them
with the collection's statistics as they are now: the live chunk count, their average length and
the term's live document frequency. Those statistics are kept up to date by each refresh in
O(change) (a deleted chunk's terms lower their frequencies, a new segment's raise them), so no
refresh re-weighs the collection; per chunk, only a length-normalisation factor is recomputed
(one vector operation over the chunks, ~ms at a million). Deleted chunks stay in their segment as
dead rows until a compaction drops them: their scores are zeroed and they count nowhere.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rag.retrieve.bm25.segment import Segment, Vocabulary
from rag.retrieve.bm25.tokens import Tokenizer, tokenize

K1 = 1.2
B = 0.75
CACHE_POSTINGS = 32_000_000
"""Postings whose weights an index keeps for the terms queried most recently (~256 MB at most):
at a million chunks a question reads ~3M postings, mostly of a few common terms."""
MAX_DELTAS = 8
"""More delta segments than this are merged into one (cost: their live chunks)."""
MAX_DEAD_SHARE = 0.25
"""When this share of the rows is dead, every segment is merged into one new base (cost: the
whole collection, paid once per that much change)."""


@dataclass
class SyncState:
    """Where the index stands against the store's manifest (see `rag.retrieve.bm25.refresh`)."""

    synced_at: float = 0.0
    """When the index was last brought in step with the store's manifest (0: never)."""
    marks: dict[str, float] = field(default_factory=dict)
    """Each file's manifest record time when its chunks were read: what is already current."""
    tokenized: int = 0
    """Chunks tokenized by the refresh that made this index (for the log)."""


class BM25Index:
    """Okapi BM25 (k1=1.2, b=0.75, Lucene's non-negative idf) over immutable segments.

    Rows are numbered across segments in order; `ids[row]` names a row's chunk, and `rows` maps
    the id of every live chunk to its row. An instance never changes: a refresh makes a new one
    sharing the segments, so a search running in another thread keeps a consistent view.
    """

    def __init__(self, segments: Sequence[Segment], vocab: Vocabulary, dead: np.ndarray | None = None,
                 version: str = "", tokenizer: Tokenizer = tokenize, sync: SyncState | None = None,
                 df: np.ndarray | None = None, ids: list[str] | None = None,
                 rows: dict[str, int] | None = None) -> None:
        """An index over `segments` with the rows `dead` (a bool per row) deleted.

        `df`, `ids` and `rows`, when a refresh already has them, spare recomputing them from
        the segments (O(postings) and O(chunks)).
        """
        self.segments = tuple(segments)
        self.vocab = vocab
        self.n_terms = sum(len(s.terms) for s in self.segments)
        self.version = version
        self.tokenizer = tokenizer
        self.sync = sync or SyncState()
        sizes = np.array([len(s) for s in self.segments], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        size = int(self.offsets[-1])
        self.dead = np.zeros(size, dtype=bool) if dead is None else dead
        self.dead_rows = np.flatnonzero(self.dead)
        self.lengths = np.concatenate([s.lengths for s in self.segments]) if self.segments \
            else np.zeros(0, np.int32)
        live_lengths = np.where(self.dead, 0, self.lengths)
        self.n_live = size - len(self.dead_rows)
        self.total_length = int(live_lengths.sum(dtype=np.int64))
        avg = max(self.total_length / self.n_live, 1e-9) if self.n_live else 1.0
        # k1·(1−b+b·len/avgdl) as base + factor·len, computed the same way everywhere
        self.base_norm = np.float32(K1 * (1 - B))
        self.length_factor = np.float32(K1 * B / avg)
        self.norm = self.lengths.astype(np.float32) * self.length_factor + self.base_norm
        self.df = df if df is not None else self._document_frequencies()
        self.ids = ids if ids is not None else [i for s in self.segments for i in s.ids]
        if rows is None:
            rows = {i: r for r, i in enumerate(self.ids)}
            for r in self.dead_rows.tolist():
                if rows.get(self.ids[r]) == r:
                    del rows[self.ids[r]]
        self.rows = rows
        self._paths: tuple[list[str], dict[str, int], np.ndarray] | None = None
        self._cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cached = 0
        self._cache_lock = threading.Lock()

    @classmethod
    def build(cls, ids: Sequence[str], texts: Sequence[str], paths: Sequence[str] | None = None,
              tokenizer: Tokenizer = tokenize, version: str = "") -> BM25Index:
        """An index of `texts` from scratch (one segment)."""
        vocab = Vocabulary()
        return cls([Segment.from_texts(ids, texts, vocab, paths, tokenizer)], vocab, version=version,
                   tokenizer=tokenizer)

    def _document_frequencies(self) -> np.ndarray:
        df = np.zeros(self.n_terms, dtype=np.int64)
        for segment in self.segments:
            counts = np.diff(segment.by_term.indptr)
            df[: len(counts)] += counts
        return df - self._terms_of(self.dead_rows)

    def _terms_of(self, rows: np.ndarray) -> np.ndarray:
        """How many of `rows` hold each term (read from the rows' own counts: O(their terms))."""
        out = np.zeros(self.n_terms, dtype=np.int64)
        if not len(rows):
            return out
        which = np.searchsorted(self.offsets, rows, side="right") - 1
        for k in np.unique(which).tolist():
            segment = self.segments[k]
            local = rows[which == k] - self.offsets[k]
            starts, ends = segment.by_doc.indptr[local], segment.by_doc.indptr[local + 1]
            cols = segment.by_doc.indices[_ranges(starts, ends)]
            out += np.bincount(cols, minlength=self.n_terms)
        return out

    def __len__(self) -> int:
        """Live chunks."""
        return self.n_live

    # --- scoring ---------------------------------------------------------------------------

    def column(self, term: str) -> int | None:
        """The term's column, if any live chunk holds it."""
        col = self.vocab.lookup.get(term)
        if col is None or col >= self.n_terms or self.df[col] == 0:
            return None
        return col

    def idf(self, df: np.ndarray | int) -> np.ndarray:
        n = self.n_live
        return np.log1p((n - np.asarray(df, dtype=np.float64) + 0.5) / (np.asarray(df, dtype=np.float64) + 0.5))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for `query` (zeros where no term matches and on dead rows).

        One sparse product, as with precomputed weights: the query's term columns of
        saturated, length-normalised counts (`_column`) times each term's idf x query count.
        """
        size = len(self.ids)
        terms = Counter(self.tokenizer(query))
        cols = [(c, n) for c, n in ((self.column(t), n) for t, n in terms.items()) if c is not None]
        if not cols:
            return np.zeros(size, dtype=np.float32)
        from scipy.sparse import csc_matrix

        weight = (self.idf(np.array([self.df[c] for c, _ in cols]))
                  * np.array([n for _, n in cols], dtype=np.float64)).astype(np.float32)
        parts = [self._column(c) for c, _ in cols]
        indptr = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum([len(r) for r, _ in parts], out=indptr[1:])
        matrix = csc_matrix((np.concatenate([p for _, p in parts]), np.concatenate([r for r, _ in parts]),
                             indptr), shape=(size, len(parts)))
        out = matrix @ weight
        out[self.dead_rows] = 0.0
        return out

    def _column(self, col: int) -> tuple[np.ndarray, np.ndarray]:
        """Term `col`'s rows and its saturated, length-normalised count in each,
        tf·(k1+1) / (tf + k1·(1−b+b·len/avgdl)), read in memory order (dead rows included:
        `scores` zeroes them); computed on first use, then kept while the index lives, up to
        `CACHE_POSTINGS`."""
        with self._cache_lock:
            hit = self._cache.get(col)
            if hit is not None:
                self._cache.move_to_end(col)
                return hit
        rows, parts = [], []
        for segment, offset in zip(self.segments, self.offsets.tolist(), strict=False):
            r, tf, length = segment.postings(col)
            if not len(r):
                continue
            tf = tf.astype(np.float32)
            denominator = length.astype(np.float32)
            denominator *= self.length_factor
            denominator += self.base_norm
            denominator += tf
            tf *= np.float32(K1 + 1)
            tf /= denominator
            rows.append(r if not offset else r + np.int32(offset))
            parts.append(tf)
        found = (rows[0], parts[0]) if len(rows) == 1 else \
            (np.concatenate(rows), np.concatenate(parts)) if rows else (_NO_ROWS, _NO_PARTS)
        with self._cache_lock:
            self._cache[col] = found
            self._cached += len(found[0])
            while self._cached > CACHE_POSTINGS and len(self._cache) > 1:
                _, (old, _) = self._cache.popitem(last=False)
                self._cached -= len(old)
        return found

    def idf_of(self, term: str) -> float:
        """The term's idf; a term no live chunk holds gets the highest idf possible (df 0)."""
        if not self.n_live:
            return 0.0
        col = self.column(term)
        return float(self.idf(0 if col is None else self.df[col]))

    def explain(self, row: int, term: str) -> tuple[float, float]:
        """The term's idf, and its weight in `row` (what one occurrence in the query adds to the
        row's score: idf × the saturated, length-normalised count); weight 0 if absent."""
        col = self.column(term)
        if col is None or self.dead[row]:
            return self.idf_of(term), 0.0
        k = int(np.searchsorted(self.offsets, row, side="right")) - 1
        segment = self.segments[k]
        tf = segment.count(row - int(self.offsets[k]), col) if col < segment.by_doc.shape[1] else 0
        idf = float(self.idf(self.df[col]))
        return idf, idf * tf * (K1 + 1) / (tf + float(self.norm[row])) if tf else 0.0

    def rows_holding(self, term: str, at_most: int) -> np.ndarray | None:
        """The live rows holding `term`, or None when more than `at_most` do (read only then)."""
        col = self.column(term)
        if col is None or self.df[col] > at_most:
            return None
        found = [r.astype(np.int64) + offset for segment, offset
                 in zip(self.segments, self.offsets.tolist(), strict=False)
                 for r in (segment.postings(col)[0],) if len(r)]  # fmt: skip
        rows = np.concatenate(found) if found else np.zeros(0, np.int64)
        return rows[~self.dead[rows]]

    def top(self, query: str, n: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Best `n` (row, score) pairs with a positive score, best first; `allowed` masks rows."""
        return self.top_of(self.scores(query), n, allowed)

    @staticmethod
    def top_of(scores: np.ndarray, n: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        if allowed is not None:
            scores = np.where(allowed, scores, 0.0)
        candidates = np.flatnonzero(scores > 0)
        if len(candidates) > n:
            candidates = candidates[np.argpartition(-scores[candidates], n - 1)[:n]]
        order = candidates[np.lexsort((candidates, -scores[candidates]))]
        return [(int(i), float(scores[i])) for i in order]

    # --- change -----------------------------------------------------------------------------

    def paths(self) -> tuple[list[str], dict[str, int], np.ndarray]:
        """The distinct file paths, path -> code, and each row's code (built once per index)."""
        if self._paths is None:
            table: dict[str, int] = {}
            codes = []
            for segment in self.segments:
                remap = np.fromiter((table.setdefault(p, len(table)) for p in segment.paths),
                                    dtype=np.int32, count=len(segment.paths))
                codes.append(remap[segment.path_codes] if len(segment) else np.zeros(0, np.int32))
            self._paths = (list(table), table, np.concatenate(codes) if codes else np.zeros(0, np.int32))
        return self._paths

    def rows_of_paths(self, paths: Sequence[str]) -> np.ndarray:
        """The live rows whose chunk comes from one of `paths`."""
        _, code, row_codes = self.paths()
        wanted = np.array([code[p] for p in paths if p in code], dtype=np.int32)
        if not len(wanted):
            return np.zeros(0, np.int64)
        return np.flatnonzero(np.isin(row_codes, wanted) & ~self.dead)

    def updated(self, gone: np.ndarray, new: Segment | None, version: str, sync: SyncState) -> BM25Index:
        """This index with the rows `gone` deleted and `new`'s chunks added: O(change), plus a
        few vector operations over the rows. A chunk of `new` whose id is already live replaces
        it. Merges segments when they are too many or too many rows are dead."""
        gone = np.unique(np.asarray(gone, dtype=np.int64))
        rows = dict(self.rows)
        segments = list(self.segments)
        if new is not None and len(new):
            again = [rows[i] for i in new.ids if i in rows]
            gone = np.union1d(gone, np.asarray(again, dtype=np.int64))
        gone = gone[~self.dead[gone]]
        dead = np.concatenate([self.dead, np.zeros(len(new) if new is not None else 0, dtype=bool)])
        dead[gone] = True
        ids = self.ids
        for r in gone.tolist():
            if rows.get(ids[r]) == r:
                del rows[ids[r]]
        n_terms = self.n_terms + (len(new.terms) if new is not None else 0)
        df = np.zeros(n_terms, dtype=np.int64)
        df[: self.n_terms] = self.df - self._terms_of(gone)
        if new is not None and len(new):
            start = len(ids)
            ids = [*ids, *new.ids]
            rows.update((i, start + k) for k, i in enumerate(new.ids))
            counts = np.diff(new.by_term.indptr)
            df[: len(counts)] += counts
        if new is not None:
            segments.append(new)
        index = BM25Index(segments, self.vocab, dead, version, self.tokenizer, sync, df, ids, rows)
        if index.dead_rows.size > MAX_DEAD_SHARE * max(len(index.ids), 1):
            return index.compacted()
        if len(segments) - 1 > MAX_DELTAS:
            return index.compacted(deltas_only=True)
        return index

    def compacted(self, deltas_only: bool = False) -> BM25Index:
        """The same index with dead rows dropped: the deltas merged into one, or every segment
        into a new base with a new vocabulary of the terms still in use."""
        live = [np.flatnonzero(~self.dead[self.offsets[k]:self.offsets[k + 1]])
                for k in range(len(self.segments))]
        if deltas_only:
            keep = self.segments[:1]
            merged = Segment.merged(list(zip(self.segments[1:], live[1:], strict=True)), self.n_terms)
            segments = [*keep, merged]
            dead = np.concatenate([self.dead[: self.offsets[1]], np.zeros(len(merged), dtype=bool)])
            return BM25Index(segments, self.vocab, dead, self.version, self.tokenizer, self.sync)
        used = np.flatnonzero(self.df > 0)
        columns = np.full(self.n_terms, -1, dtype=np.int64)
        columns[used] = np.arange(len(used))
        terms = [self.vocab.terms[c] for c in used.tolist()]
        base = Segment.merged(list(zip(self.segments, live, strict=True)), self.n_terms, columns, terms)
        return BM25Index([base], Vocabulary(terms), None, self.version, self.tokenizer, self.sync)


_NO_ROWS = np.zeros(0, dtype=np.int32)
_NO_PARTS = np.zeros(0, dtype=np.float32)


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The concatenation of range(start, end) for each pair, without a Python loop."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(ends, dtype=np.int64) - starts
    keep = lengths > 0
    starts, lengths = starts[keep], lengths[keep]
    if not len(lengths):
        return np.zeros(0, np.int64)
    steps = np.ones(int(lengths.sum()), dtype=np.int64)
    steps[0] = starts[0]
    # where each later range begins, jump from the previous range's last index to its start
    steps[np.cumsum(lengths)[:-1]] = starts[1:] - (starts[:-1] + lengths[:-1] - 1)
    return np.cumsum(steps)
