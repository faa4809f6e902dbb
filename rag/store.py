"""The Chroma store: an embedded PersistentClient by default, a Chroma server when configured.

One collection per embedding model and size (its name says which), in cosine space, with its
model recorded in the collection's metadata and checked on every open, so 512-dim vectors never
land beside 1,536-dim ones. Beside each, a small manifest collection (`rag.state`) holds the file
records and the write version every process and machine agrees on.

Embedded Chroma keeps a collection's vector index in the memory of each process that searched it,
and never re-reads it when another process writes. `catch_up` reads the shared write version (one
small read) and, when another process moved it, reopens the embedded client, so a long-lived
process (the app) sees the CLI's ingests, deletes and resets at its next question. A server needs
no reopening: it is one process. Indexing and search logic live in `rag.ingest.pipeline` and
`rag.retrieve.searcher`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.config import Settings
from rag.embed.providers import EmbeddingInfo
from rag.errors import DimensionMismatchError, StoreError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection
    from langchain_chroma import Chroma
    from langchain_core.embeddings import Embeddings

PREFIX = "rag_"
MANIFEST_PREFIX = "ragfiles_"
"""Each collection's manifest (file records and write version) lives in a collection so named."""
EVAL_PREFIX = "eval_"
"""`rag eval` keeps each QA set's paragraphs in a collection of its own, named with this prefix."""


def client(settings: Settings) -> ClientAPI:
    """The Chroma client for these settings (shared per process)."""
    if settings.chroma_host:
        return _http_client(settings.chroma_host, settings.chroma_port)
    return _persistent_client(settings.chroma_dir.absolute())


_OPENING = threading.Lock()


@lru_cache(maxsize=8)
def _persistent_client(path: Path) -> ClientAPI:
    """Open the embedded store; a new one that another process (or the app's first-start thread)
    is creating at this very moment is waited for rather than reported as broken.

    Chroma runs its schema migrations when a client opens a new directory, and two openers racing
    on one fresh directory make the second fail with "table ... already exists"; Chroma also keeps
    the half-started system in a process-wide registry, which must be dropped before trying again.
    """
    import chromadb
    from chromadb.api.shared_system_client import SharedSystemClient
    from chromadb.config import Settings as ChromaSettings

    logging.getLogger("chromadb").setLevel(logging.ERROR)
    path.mkdir(parents=True, exist_ok=True)
    with _OPENING:
        for attempt in range(6):
            try:
                return chromadb.PersistentClient(
                    path=str(path), settings=ChromaSettings(anonymized_telemetry=False, allow_reset=True)
                )
            except Exception as exc:
                SharedSystemClient._identifier_to_system.pop(str(path), None)
                if "already exists" not in str(exc) or attempt == 5:
                    raise StoreError(f"Cannot open the Chroma store at {path}: {exc}") from None
                time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


@lru_cache(maxsize=8)
def _http_client(host: str, port: int) -> ClientAPI:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    logging.getLogger("chromadb").setLevel(logging.ERROR)
    try:
        remote = chromadb.HttpClient(
            host=host, port=port, settings=ChromaSettings(anonymized_telemetry=False, allow_reset=True)
        )
        remote.heartbeat()
    except Exception:
        raise StoreError(
            f"Cannot reach the Chroma server at {host}:{port}.",
            f"Start it (`chroma run --path DIR --host {host} --port {port}`) or unset CHROMA_HOST "
            "to use the embedded store.",
        ) from None
    return remote


def reset_clients() -> None:
    """Forget cached clients (tests point the data dir somewhere new)."""
    _persistent_client.cache_clear()
    _http_client.cache_clear()
    _known.clear()


def store_key(settings: Settings) -> str:
    """Which store these settings reach: a server address or an embedded path."""
    if settings.chroma_host:
        return f"http://{settings.chroma_host}:{settings.chroma_port}"
    return str(settings.chroma_dir.absolute())


_known: dict[tuple[str, str], str] = {}
"""(store, collection) -> the write version this process's embedded handles reflect."""


_ours: set[str] = set()
"""Versions this process wrote (or is writing): never a reason to reopen its own store."""


def will_write(version: str) -> None:
    """Say, before writing it, that `version` is this process's own.

    Another thread of this process (the app's question while its first-start ingest runs) may
    read the new version before `note_version` records it; without this it would take our own
    write for another process's, and reopen the store under the writer's feet.
    """
    _ours.add(version)


def note_version(settings: Settings, name: str, version: str) -> None:
    """This process wrote `version`: its own handles already hold the write, nothing to reopen."""
    _ours.add(version)
    _known[(store_key(settings), name)] = version


def catch_up(settings: Settings, name: str) -> str:
    """The collection's shared write version; reopens the embedded client if another process moved it.

    Called before each question and before each ingest. In server mode the server is the only
    process holding the index, so nothing is reopened; the version still tells BM25 and the
    caches to refresh.
    """
    from rag.state import read_version

    version = read_version(settings, name)
    key = (store_key(settings), name)
    seen = _known.get(key)
    if seen is not None and seen != version and version not in _ours and not settings.chroma_host:
        reopen_embedded(settings)
    _known[key] = version
    return version


def reopen_embedded(settings: Settings) -> None:
    """Drop this process's embedded Chroma for the data dir, so the next call loads what is on disk.

    Chroma caches one `System` per path; handles already given out keep the old one alive (and
    keep working on the old view) until they are dropped, so a search in flight is not broken.
    """
    from chromadb.api.shared_system_client import SharedSystemClient

    path = str(settings.chroma_dir.absolute())
    _persistent_client.cache_clear()
    SharedSystemClient._identifier_to_system.pop(path, None)
    SharedSystemClient._identifier_to_refcount.pop(path, None)
    log.debug("reopened the embedded store at %s after another process wrote", path)


def collection(settings: Settings, info: EmbeddingInfo, *, create: bool = True) -> Collection:
    """The collection for this embedding model, created in cosine space if `create`."""
    chroma = client(settings)
    name = info.collection_name
    try:
        if create:
            coll = chroma.get_or_create_collection(
                name,
                metadata={**info.as_dict(), "created_by": "rag"},
                configuration={
                    "hnsw": {
                        "space": "cosine",
                        "ef_search": settings.hnsw_ef_search,
                        "ef_construction": settings.hnsw_ef_construction,
                        "max_neighbors": settings.hnsw_m,
                    }
                },
            )
        else:
            coll = chroma.get_collection(name)
    except StoreError:
        raise
    except Exception as exc:
        from rag.failures import explain

        if isinstance(known := explain(exc, settings), StoreError):  # the server went away
            raise known from None
        if not create and "does not exist" in str(exc).lower():
            raise StoreError(f"Nothing ingested with {info.model} yet.", "Run `rag ingest PATH`.") from None
        raise StoreError(f"Chroma failed to open collection {name}: {exc}") from None
    check_dims(coll.metadata or {}, info)
    if (coll.metadata or {}).get("dims") is None and coll.count():
        # not made by us (no model recorded): the stored vectors themselves tell their size
        sample = coll.get(limit=1, include=["embeddings"])["embeddings"]
        if sample is not None and len(sample) and len(sample[0]) != info.dims:
            check_dims({"dims": len(sample[0]), "model": "an unrecorded model"}, info)
    return coll


def check_dims(metadata: dict[str, Any], info: EmbeddingInfo) -> None:
    stored = metadata.get("dims")
    if stored is not None and (int(stored) != info.dims or metadata.get("model") != info.model):
        raise DimensionMismatchError(
            f"Collection {info.collection_name} holds {stored}-dim vectors of "
            f"{metadata.get('model')}, not {info.dims}-dim vectors of {info.model}. "
            "Refusing to mix vector spaces.",
            "Run `rag reset --yes` or use the matching model.",
        )


def vector_store(settings: Settings, info: EmbeddingInfo, embeddings: Embeddings) -> Chroma:
    """LangChain's `Chroma` over our collection, for `index()` and chain composition."""
    from langchain_chroma import Chroma

    coll = collection(settings, info)
    chroma = client(settings)
    return Chroma(
        client=chroma,
        # without it langchain-chroma builds a fresh chromadb Settings from the environment (~20 ms)
        client_settings=chroma.get_settings(),
        collection_name=coll.name,
        embedding_function=embeddings,
        create_collection_if_not_exists=False,
    )


@dataclass(frozen=True)
class CollectionStats:
    name: str
    provider: str | None
    model: str | None
    dims: int | None
    count: int

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "provider": self.provider, "model": self.model,
                "dims": self.dims, "count": self.count}


def collection_names(settings: Settings, prefixes: tuple[str, ...]) -> list[str]:
    """Names of the store's collections starting with one of `prefixes`, sorted."""
    listed = client(settings).list_collections()
    return sorted(n for n in (c if isinstance(c, str) else c.name for c in listed) if n.startswith(prefixes))


def list_collections(settings: Settings) -> list[CollectionStats]:
    """Every collection this tool made, with its model and size."""
    chroma = client(settings)
    stats = []
    for name in collection_names(settings, (PREFIX,)):
        coll = chroma.get_collection(name)
        meta = coll.metadata or {}
        dims = meta.get("dims")
        stats.append(CollectionStats(name, meta.get("provider"), meta.get("model"),
                                     int(dims) if dims is not None else None, coll.count()))
    return stats


def describe(settings: Settings) -> dict[str, Any]:
    if settings.chroma_host:
        return {"mode": "server", "host": settings.chroma_host, "port": settings.chroma_port}
    return {"mode": "embedded", "path": str(settings.chroma_dir.absolute())}
