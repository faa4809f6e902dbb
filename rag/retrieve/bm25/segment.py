"""Immutable slices of a BM25 index: raw term counts of some chunks, saved as memory-mapped arrays.

An index is a large base segment plus small delta segments, one per refresh (Lucene's design):
a refresh tokenizes only the chunks it has not seen into a new delta and marks the rows of
deleted chunks dead, so its cost follows the change, not the collection. Counts stay raw (no
BM25 weights, which depend on the whole collection's statistics), so no segment is rewritten
when another one changes. Each segment holds its counts twice: by term (CSC, what a query reads)
and by chunk (CSR, what a deletion reads to lower the document frequencies of the chunk's terms;
on disk and memory-mapped, only the pages of deleted rows are ever read).

Term columns are global: the vocabulary only grows between compactions, and each segment
records the terms it added, so the vocabulary is the concatenation of those lists.
"""

from __future__ import annotations

import os
import shutil
import uuid
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.retrieve.bm25.tokens import Tokenizer, tokenize

if TYPE_CHECKING:
    from scipy.sparse import csc_matrix, csr_matrix


class Vocabulary:
    """Term -> column, append-only; shared by the successive versions of one index.

    An index knows how many of the terms are its own (`BM25Index.n_terms`): terms a later refresh
    appended are invisible to it, so sharing needs no copy and no lock beyond the refresh's.
    """

    def __init__(self, terms: Iterable[str] = ()) -> None:
        self.terms: list[str] = list(terms)
        self.lookup: dict[str, int] = {t: i for i, t in enumerate(self.terms)}

    def __len__(self) -> int:
        return len(self.terms)

    def truncate(self, n: int) -> None:
        """Forget the terms after the first `n` (left by a refresh that failed half-way)."""
        for term in self.terms[n:]:
            del self.lookup[term]
        del self.terms[n:]


@dataclass(frozen=True)
class Segment:
    """Raw term counts of some chunks; never changed once built (deletions are the index's)."""

    name: str
    ids: list[str]
    paths: list[str]
    """The distinct file paths of the segment's chunks; `path_codes` index into it."""
    path_codes: np.ndarray
    lengths: np.ndarray
    """Each chunk's length in terms (int32)."""
    by_term: csc_matrix
    by_doc: csr_matrix
    terms: list[str]
    """The terms this segment added to the vocabulary, in column order."""
    posting_lengths: np.ndarray
    """Beside each posting of `by_term`, its chunk's length: a query weighs a term's postings
    reading memory in order, with no gather of lengths by row (~2x faster at a million)."""

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_texts(cls, ids: Sequence[str], texts: Iterable[str], vocab: Vocabulary,
                   paths: Sequence[str] | None = None, tokenizer: Tokenizer = tokenize) -> Segment:
        """Tokenize `texts` into a new segment, appending the terms `vocab` lacks."""
        from scipy.sparse import csr_matrix

        first_new = len(vocab)
        lookup = vocab.lookup
        add = lookup.setdefault
        # typed arrays, not lists: 190M postings (1M chunks) as Python ints would not fit
        indptr, indices, data = array("q", [0]), array("i"), array("i")
        for text in texts:
            counts = Counter(tokenizer(text))
            indices.extend([add(t, len(lookup)) for t in counts])
            data.extend(counts.values())
            indptr.append(len(indices))
        vocab.terms.extend(islice(lookup, first_new, None))  # dicts keep insertion order
        n_docs = len(indptr) - 1
        if n_docs != len(ids):
            raise ValueError(f"{len(ids)} ids for {n_docs} texts")
        by_doc = csr_matrix(
            (_small(np.frombuffer(data, dtype=np.int32)), np.frombuffer(indices, dtype=np.int32),
             np.frombuffer(indptr, dtype=np.int64)),
            shape=(n_docs, len(vocab)),
        )
        by_doc.sort_indices()
        lengths = np.asarray(by_doc.sum(axis=1, dtype=np.int64)).ravel().astype(np.int32)
        table, codes = _codes(paths if paths is not None else [""] * n_docs)
        by_term = _by_term(by_doc)
        return cls(_new_name(), list(ids), table, codes, lengths, by_term, by_doc,
                   vocab.terms[first_new:], _posting_lengths(by_term, lengths))

    @classmethod
    def merged(cls, parts: Sequence[tuple[Segment, np.ndarray]], n_terms: int,
               columns: np.ndarray | None = None, terms: list[str] | None = None) -> Segment:
        """One segment holding the `live` local rows of each (segment, live) part, in order.

        `columns` maps old term columns to new ones (a compaction that drops unused terms), with
        `terms` the new vocabulary; without it columns keep their numbers and the merged segment
        adds the terms its parts added.
        """
        from scipy.sparse import csr_matrix, vstack

        width = n_terms if columns is None else len(columns)
        blocks, ids, paths, lengths = [], [], [], []
        for segment, live in parts:
            rows = segment.by_doc[live]
            blocks.append(csr_matrix((rows.data, rows.indices, rows.indptr), shape=(rows.shape[0], width)))
            ids.extend(segment.ids[i] for i in live)
            paths.extend(segment.paths[c] for c in segment.path_codes[live])
            lengths.append(segment.lengths[live])
        by_doc = vstack(blocks, format="csr") if blocks else csr_matrix((0, width), dtype=np.int32)
        if columns is not None:  # every column still in use maps somewhere
            by_doc = csr_matrix((by_doc.data, columns[by_doc.indices], by_doc.indptr),
                                shape=(by_doc.shape[0], len(terms or [])))
            by_doc.sort_indices()
        by_doc = csr_matrix((_small(by_doc.data), by_doc.indices.astype(np.int32, copy=False),
                             by_doc.indptr.astype(np.int64, copy=False)), shape=by_doc.shape)
        table, codes = _codes(paths)
        added = terms if terms is not None else [t for s, _ in parts for t in s.terms]
        all_lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int32)
        by_term = _by_term(by_doc)
        return cls(_new_name(), ids, table, codes, all_lengths, by_term, by_doc, added,
                   _posting_lengths(by_term, all_lengths))

    def with_paths(self, paths: Sequence[str]) -> Segment:
        """This segment with its chunks' file paths (known only once its texts were read)."""
        table, codes = _codes(paths)
        return replace(self, paths=table, path_codes=codes)

    def postings(self, col: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Local rows holding term `col`, its count in each, and each row's length."""
        if col >= self.by_term.shape[1]:
            return _NO_ROWS, _NO_ROWS, _NO_ROWS
        start, end = self.by_term.indptr[col], self.by_term.indptr[col + 1]
        return self.by_term.indices[start:end], self.by_term.data[start:end], self.posting_lengths[start:end]

    def count(self, row: int, col: int) -> int:
        """How many times term `col` occurs in local row `row`."""
        start, end = self.by_doc.indptr[row], self.by_doc.indptr[row + 1]
        cols = self.by_doc.indices[start:end]
        at = int(np.searchsorted(cols, col))
        return int(self.by_doc.data[start + at]) if at < len(cols) and cols[at] == col else 0

    def save(self, folder: Path) -> None:
        """Write the segment under `folder/name/` (once: segments never change)."""
        target = folder / self.name
        if target.is_dir():
            return
        tmp = folder / f".{self.name}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        arrays = {
            "ids": pack(self.ids), "paths": pack(self.paths), "path_codes": self.path_codes,
            "lengths": self.lengths, "terms": pack(self.terms),
            "shape": np.asarray(self.by_doc.shape, dtype=np.int64),
            "term_indptr": self.by_term.indptr, "term_rows": self.by_term.indices, "term_counts": self.by_term.data,
            "doc_indptr": self.by_doc.indptr, "doc_cols": self.by_doc.indices, "doc_counts": self.by_doc.data,
            "posting_lengths": self.posting_lengths,
        }
        for key, value in arrays.items():
            np.save(tmp / f"{key}.npy", np.ascontiguousarray(value), allow_pickle=False)
        os.replace(tmp, target)

    @classmethod
    def load(cls, folder: Path, name: str) -> Segment:
        """The segment saved as `folder/name/`, its counts memory-mapped (read lazily, shared
        with other processes through the page cache)."""
        from scipy.sparse import csc_matrix, csr_matrix

        base = folder / name

        def arr(key: str, mmap: bool = True) -> np.ndarray:
            return np.load(base / f"{key}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)

        n_docs, n_terms = (int(x) for x in arr("shape", False))
        by_term = _trusted(csc_matrix, (arr("term_counts"), arr("term_rows"), arr("term_indptr")), (n_docs, n_terms))
        by_doc = _trusted(csr_matrix, (arr("doc_counts"), arr("doc_cols"), arr("doc_indptr")), (n_docs, n_terms))
        return cls(name, unpack(arr("ids", False)), unpack(arr("paths", False)), arr("path_codes", False),
                   arr("lengths", False), by_term, by_doc, unpack(arr("terms", False)), arr("posting_lengths"))


_NO_ROWS = np.zeros(0, dtype=np.int32)


def _trusted(kind: type, arrays: tuple[np.ndarray, np.ndarray, np.ndarray], shape: tuple[int, int]):
    """A scipy sparse matrix over memory-mapped arrays, without the O(nnz) checks and copies
    that its constructor would make (which would read the whole file)."""
    matrix = kind(shape, dtype=arrays[0].dtype)
    matrix.data, matrix.indices, matrix.indptr = arrays
    matrix.has_sorted_indices = True
    return matrix


def _by_term(by_doc: csr_matrix) -> csc_matrix:
    by_term = by_doc.tocsc()
    by_term.sort_indices()
    return by_term


def _posting_lengths(by_term: csc_matrix, lengths: np.ndarray) -> np.ndarray:
    small = lengths.size == 0 or int(lengths.max()) < 65536
    return lengths.astype(np.uint16 if small else np.int32)[by_term.indices]


def _small(counts: np.ndarray) -> np.ndarray:
    """Counts as uint16 when they fit (always, in practice): a third less memory per posting."""
    return counts.astype(np.uint16) if counts.size == 0 or int(counts.max()) < 65536 else counts


def _codes(paths: Sequence[str]) -> tuple[list[str], np.ndarray]:
    table: dict[str, int] = {}
    codes = np.fromiter((table.setdefault(p, len(table)) for p in paths), dtype=np.int32, count=len(paths))
    return list(table), codes


def _new_name() -> str:
    return uuid.uuid4().hex[:16]


def pack(strings: Iterable[str]) -> np.ndarray:
    """Strings as one UTF-8 byte array (no pickle, compact), each ended by a newline (terms, ids
    and paths never hold one), so that an empty string survives."""
    return np.frombuffer("".join(f"{s}\n" for s in strings).encode("utf-8"), dtype=np.uint8)


def unpack(array: np.ndarray) -> list[str]:
    return array.tobytes().decode("utf-8").split("\n")[:-1]
