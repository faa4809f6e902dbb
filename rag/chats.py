"""Conversations that last: chats, their turns, answers and feedback in one SQLite file.

`RAG_DATA_DIR/chats.db` belongs to this module alone. Each assistant turn keeps its whole `Answer`
(sources, scores, vectors, timings, next-token odds) as JSON, so a chat reopened after a restart
shows the same sources and debug panel without searching again. Feedback lives beside the turn it
is about: 👍/👎 on the answer, right/wrong on each source. Exports (Markdown, JSON) and the QA set
that `rag eval --from-feedback` measures are read from here too. A connection per call keeps it
safe for Streamlit's threads; WAL lets the CLI read while the app writes.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from rag.config import Settings
from rag.errors import RagError

if TYPE_CHECKING:
    from rag.answer.answerer import Answer

LOCAL_USER = "local"
"""Who owns chats when the app has no login (Streamlit's `st.user` has no email)."""
TITLE_CHARS = 40
Verdict = Literal["right", "wrong"]
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chats (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    title TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS chats_user ON chats (user, updated);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    answer TEXT,
    error TEXT,
    rating INTEGER,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_chat ON turns (chat_id, id);
CREATE TABLE IF NOT EXISTS source_feedback (
    turn_id INTEGER NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
    rank INTEGER NOT NULL,
    source TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('right', 'wrong')),
    PRIMARY KEY (turn_id, rank)
);
"""


class ChatNotFoundError(RagError):
    """No chat with that id (ids are listed by `rag chats list`)."""


@dataclass
class Chat:
    id: str
    user: str
    title: str
    created: float
    updated: float
    turns: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Turn:
    """One message: the user's question, or the assistant's answer (or error) with its feedback."""

    id: int
    role: str
    content: str
    answer: Answer | None = None
    error: str | None = None
    rating: int | None = None
    """+1 👍, -1 👎, None not rated."""
    sources: dict[int, Verdict] = field(default_factory=dict)
    """Source verdicts by hit rank."""


def chats_path(settings: Settings) -> Path:
    return settings.data_dir / "chats.db"


class ChatStore:
    """Every chat of one data dir. Methods are small transactions; ids are short random hex."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @classmethod
    def of(cls, settings: Settings) -> ChatStore:
        return cls(chats_path(settings))

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            db.execute("PRAGMA foreign_keys=ON")
            with db:  # one transaction, committed on success
                yield db

    # --- chats ---------------------------------------------------------------------------------

    def create(self, user: str = LOCAL_USER, title: str = "") -> Chat:
        now = time.time()
        chat = Chat(secrets.token_hex(6), user, title_of(title) or "新しい会話 / New chat", now, now)
        with self._db() as db:
            db.execute("INSERT INTO chats VALUES (?, ?, ?, ?, ?)",
                       (chat.id, chat.user, chat.title, chat.created, chat.updated))
        return chat

    def list(self, user: str | None = None) -> list[Chat]:
        """Chats, most recently used first; all users' when `user` is None."""
        sql = ("SELECT c.id, c.user, c.title, c.created, c.updated, COUNT(t.id) FROM chats c "
               "LEFT JOIN turns t ON t.chat_id = c.id")
        args: list[object] = []
        if user is not None:
            sql += " WHERE c.user = ?"
            args.append(user)
        sql += " GROUP BY c.id ORDER BY c.updated DESC, c.rowid DESC"
        with self._db() as db:
            return [Chat(*row) for row in db.execute(sql, args)]

    def get(self, chat_id: str) -> Chat:
        for chat in self.list():
            if chat.id == chat_id:
                return chat
        raise ChatNotFoundError(f"No chat with id {chat_id!r}.", "`rag chats list` shows the ids.")

    def rename(self, chat_id: str, title: str) -> None:
        self.get(chat_id)
        with self._db() as db:
            db.execute("UPDATE chats SET title = ? WHERE id = ?", (title_of(title) or "…", chat_id))

    def delete(self, chat_id: str) -> None:
        self.get(chat_id)
        with self._db() as db:
            db.execute("DELETE FROM chats WHERE id = ?", (chat_id,))

    # --- turns and feedback ----------------------------------------------------------------------

    def add_turn(self, chat_id: str, role: str, content: str, *, answer: Answer | None = None,
                 error: str | None = None) -> int:
        now = time.time()
        payload = (json.dumps(answer_to_dict(answer), ensure_ascii=False, default=_plain)
                   if answer is not None else None)
        with self._db() as db:
            cur = db.execute(
                "INSERT INTO turns (chat_id, role, content, answer, error, created) VALUES (?, ?, ?, ?, ?, ?)",
                (chat_id, role, content, payload, error, now))
            db.execute("UPDATE chats SET updated = ? WHERE id = ?", (now, chat_id))
            return int(cur.lastrowid or 0)

    def turns(self, chat_id: str) -> list[Turn]:
        with self._db() as db:
            rows = db.execute("SELECT id, role, content, answer, error, rating FROM turns "
                              "WHERE chat_id = ? ORDER BY id", (chat_id,)).fetchall()
            verdicts = db.execute(
                "SELECT f.turn_id, f.rank, f.verdict FROM source_feedback f JOIN turns t "
                "ON t.id = f.turn_id WHERE t.chat_id = ?", (chat_id,)).fetchall()
        by_turn: dict[int, dict[int, Verdict]] = {}
        for turn_id, rank, verdict in verdicts:
            by_turn.setdefault(turn_id, {})[rank] = verdict
        return [
            Turn(id_, role, content, answer_from_dict(json.loads(answer)) if answer else None, error,
                 rating, by_turn.get(id_, {}))
            for id_, role, content, answer, error, rating in rows
        ]

    def rate(self, turn_id: int, rating: int | None) -> None:
        """👍 (+1), 👎 (-1) or no rating (None) for an answer."""
        if rating not in (1, -1, None):
            raise ValueError(f"rating must be 1, -1 or None, not {rating!r}")
        with self._db() as db:
            db.execute("UPDATE turns SET rating = ? WHERE id = ?", (rating, turn_id))

    def judge_source(self, turn_id: int, rank: int, source: str, verdict: Verdict | None) -> None:
        """Mark the answer's source at `rank` right or wrong (None clears the mark)."""
        with self._db() as db:
            if verdict is None:
                db.execute("DELETE FROM source_feedback WHERE turn_id = ? AND rank = ?", (turn_id, rank))
            else:
                db.execute("INSERT OR REPLACE INTO source_feedback VALUES (?, ?, ?, ?)",
                           (turn_id, rank, source, verdict))

    def marked_right(self) -> list[tuple[str, str, int]]:
        """(question as searched, source, rank) for every source marked right, oldest first."""
        with self._db() as db:
            rows = db.execute(
                "SELECT t.answer, f.source, f.rank FROM source_feedback f JOIN turns t "
                "ON t.id = f.turn_id WHERE f.verdict = 'right' ORDER BY t.id, f.rank").fetchall()
        out = []
        for payload, source, rank in rows:
            data = json.loads(payload) if payload else {}
            question = data.get("standalone_question") or data.get("question")
            if question:
                out.append((question, source, rank))
        return out


def title_of(text: str) -> str:
    """A chat title from its first question: one line, at most `TITLE_CHARS` characters."""
    line = " ".join(text.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"


# --- answers as JSON -----------------------------------------------------------------------------


def answer_to_dict(answer: Answer) -> dict[str, Any]:
    """Everything the chat and the debug panel show about an answer, vectors included."""
    return asdict(answer)


def _plain(value: object) -> object:
    """numpy scalars (a BM25 rank, a score) as plain numbers."""
    if hasattr(value, "item"):
        return value.item()  # type: ignore[attr-defined]
    raise TypeError(f"cannot store {type(value).__name__} in a chat")


def answer_from_dict(data: dict[str, Any]) -> Answer:
    """The `Answer` again; fields added to its classes since it was stored take their defaults,
    fields since removed are dropped, so old chats stay readable."""
    from rag.answer.answerer import Answer, TokenLogprob
    from rag.embed.providers import EmbeddingInfo
    from rag.retrieve.fusion import Fusion
    from rag.retrieve.hits import Hit, SearchResult

    def hit(raw: dict[str, Any]) -> Hit:
        fusion = raw.get("fusion")
        return _build(Hit, {**raw, "fusion": _build(Fusion, fusion) if fusion else None})

    search = dict(data["search"])
    search["embedding"] = _build(EmbeddingInfo, search["embedding"])
    search["hits"] = [hit(h) for h in search["hits"]]
    logprobs = data.get("logprobs")
    return _build(Answer, {
        **data,
        "search": _build(SearchResult, search),
        "logprobs": [TokenLogprob(e["token"], e["logprob"], [tuple(p) for p in e["top"]])
                     for e in logprobs] if logprobs else None,
    })


def _build(cls: type[T], data: dict[str, Any]) -> T:
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


# --- exports -------------------------------------------------------------------------------------


def export_dict(store: ChatStore, chat_id: str) -> dict[str, Any]:
    """One chat as JSON: each question with its answer, citations, sources (scores) and model."""
    chat = store.get(chat_id)
    turns = store.turns(chat_id)
    exchanges: list[dict[str, Any]] = []
    question = ""
    for turn in turns:
        if turn.role == "user":
            question = turn.content
            continue
        item: dict[str, Any] = {"question": question}
        if turn.answer is None:
            item.update(answer=turn.content, error=turn.error)
        else:
            a = turn.answer
            item.update(
                answer=a.text, mode=a.mode, llm=a.llm, embedding=a.search.embedding.as_dict(),
                retrieval=a.search.mode, citations=a.citations,
                sources=[{**h.as_dict(), "verdict": turn.sources.get(h.rank)} for h in a.search.hits],
            )
            if a.standalone_question != a.question:
                item["standalone_question"] = a.standalone_question
        item["rating"] = {1: "up", -1: "down"}.get(turn.rating or 0)
        exchanges.append(item)
    return {"id": chat.id, "title": chat.title, "user": chat.user, "created": _iso(chat.created),
            "updated": _iso(chat.updated), "exchanges": exchanges}


def export_markdown(store: ChatStore, chat_id: str) -> str:
    data = export_dict(store, chat_id)
    lines = [f"# {data['title']}", "", f"chat `{data['id']}` · {data['created']} → {data['updated']}", ""]
    for n, item in enumerate(data["exchanges"], start=1):
        lines += [f"## {n}. {item['question']}", ""]
        if item.get("error"):
            lines += [f"> error: {item['error']}", ""]
            continue
        model = item.get("llm") or "extractive"
        emb = item.get("embedding") or {}
        rating = {"up": " · 👍", "down": " · 👎"}.get(item.get("rating") or "", "")
        lines += [item["answer"], "",
                  f"*answer: {model} · embedding: {emb.get('model', '?')} ({emb.get('dims', '?')} dims) · "
                  f"retrieval: {item.get('retrieval', '?')}{rating}*", ""]
        if item.get("sources"):
            lines += ["| # | source | page | similarity | cited | verdict |", "|---|---|---|---|---|---|"]
            for s in item["sources"]:
                cited = "★" if s["rank"] in item["citations"] else ""
                lines.append(f"| [{s['rank']}] | `{s['source']}` | {s['page'] or ''} | {s['score']:.3f} "
                             f"| {cited} | {s.get('verdict') or ''} |")
            lines.append("")
    return "\n".join(lines)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(ts))


# --- feedback as an eval set ---------------------------------------------------------------------


def feedback_qa(store: ChatStore) -> list[dict[str, str]]:
    """The `{"question", "source"}` lines `rag eval` reads: each question a person marked a source
    right for, once, with its best-ranked right source. The question is the one retrieval saw (a
    follow-up rewritten into a standalone question), so it means something on its own."""
    best: dict[str, tuple[int, str]] = {}
    for question, source, rank in store.marked_right():
        best[question] = (rank, source) if question not in best or rank < best[question][0] else best[question]
    return [{"question": q, "source": s} for q, (_, s) in best.items()]


def write_feedback_qa(store: ChatStore, out: Path) -> int:
    """Write the feedback QA set as JSONL; returns the number of questions."""
    rows = feedback_qa(store)
    if not rows:
        raise RagError("No answer has a source marked right yet.",
                       "Mark sources ✓ right under answers in the app, then run "
                       "`rag eval --from-feedback` again.")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return len(rows)
