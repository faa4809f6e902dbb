"""One vector as a person reads it: its size, norm and range, exports, and the cosine of two."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VectorSummary:
    dims: int
    norm: float
    minimum: float
    maximum: float
    mean: float


def summarize(vector: Sequence[float] | np.ndarray) -> VectorSummary:
    v = np.asarray(vector, dtype=np.float64)
    if v.size == 0:
        return VectorSummary(0, 0.0, 0.0, 0.0, 0.0)
    return VectorSummary(int(v.size), float(np.linalg.norm(v)), float(v.min()), float(v.max()),
                         float(v.mean()))


def vector_csv(vectors: dict[str, Sequence[float]]) -> str:
    """One column per labelled vector, one row per dimension: opens as-is in a spreadsheet."""
    labels = list(vectors)
    arrays = [np.asarray(vectors[label], dtype=np.float64) for label in labels]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["dim", *labels])
    for dim in range(max((a.size for a in arrays), default=0)):
        writer.writerow([dim, *(repr(float(a[dim])) if dim < a.size else "" for a in arrays)])
    return out.getvalue()


def vector_json(vectors: dict[str, Sequence[float]]) -> str:
    return json.dumps({k: [float(x) for x in v] for k, v in vectors.items()}, ensure_ascii=False)


def cosine(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / norms) if norms else 0.0
