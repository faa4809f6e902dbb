"""The offline next-token engine against llama.cpp, on real text, through the library and `rag next`.

The reference (tests/data/gemma_reference.json) was recorded with llama-cpp-python by
scripts/gemma_reference.py: token IDs, the top-10 next tokens with log-probabilities for 13 ja/en
prompts, and the perplexity of six encyclopedia paragraphs (tests/data/wiki_paragraphs.json);
once on the weights dequantized to float32 (the same arithmetic as ours) and once on the
quantized file as llama.cpp runs it by default.
The model is converted once into pytest's cache folder and loaded once per session.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from rag.cli import main
from rag.errors import InputError
from rag.lens import nexttoken, wordvectors
from rag.lens.nexttoken import MAX_TOKENS, SEED_TEXT, NextTokenModel, Score, probabilities

DATA = Path(__file__).resolve().parent / "data"
REFERENCE = json.loads((DATA / "gemma_reference.json").read_text(encoding="utf-8"))
PARAGRAPHS = json.loads((DATA / "wiki_paragraphs.json").read_text(encoding="utf-8"))["paragraphs"]
EXACT_TOLERANCE = 0.005
QUANTIZED_TOLERANCE = 0.1


@pytest.fixture(scope="session")
def lm_dir(request: pytest.FixtureRequest) -> Path:
    """A cache shared by test sessions: the conversion (a minute) happens once per checkout."""
    return request.config.cache.mkdir("gemma3-270m")


@pytest.fixture(scope="session")
def model(lm_dir: Path) -> NextTokenModel:
    return nexttoken.load_model(lm_dir)


@pytest.fixture(scope="session")
def scores(model: NextTokenModel) -> dict[str, Score]:
    """Each paragraph scored once for the session (the whole vocabulary at every position)."""
    return {p["title"]: model.score(p["text"]) for p in PARAGRAPHS}


@pytest.fixture
def lm_env(lm_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from rag.config import get_settings

    monkeypatch.setenv("RAG_LM_DIR", str(lm_dir))
    get_settings.cache_clear()
    return lm_dir


def assert_matches(model: NextTokenModel, case: dict, tolerance: float) -> float:
    """Same tokens, same top-1, every reference top-10 probability within `tolerance`."""
    assert [model.config.bos_id, *model.encode(case["text"])] == case["tokens"]
    dist = model.distribution(case["text"], top=1)
    assert dist.candidates[0].id == case["top"][0]["id"], (dist.candidates[0], case["top"][0])
    worst = 0.0
    for ref in case["top"]:
        gap = abs(float(dist.probs[ref["id"]]) - math.exp(ref["logprob"]))
        assert gap <= tolerance, (ref, float(dist.probs[ref["id"]]))
        worst = max(worst, gap)
    return worst


@pytest.mark.parametrize("case", REFERENCE["float32"]["prompts"], ids=lambda c: c["text"])
def test_matches_llama_cpp_on_the_same_float32_weights(model: NextTokenModel, case: dict) -> None:
    """The forward pass itself: llama.cpp doing plain float32 arithmetic on the same weights.

    The target is 0.02; measured, the largest gap is below 0.001, so this holds the engine to 0.005.
    """
    assert_matches(model, case, EXACT_TOLERANCE)


@pytest.mark.parametrize("case", REFERENCE["q4_k_m"]["prompts"], ids=lambda c: c["text"])
def test_agrees_with_llama_cpp_running_the_quantized_file(model: NextTokenModel, case: dict) -> None:
    """llama.cpp's default run rounds activations to 8 bits inside each product and keeps a float16
    cache; that moves probabilities by up to 0.09 here (' dog' after "...over the lazy": 0.725
    there, 0.814 in float32 arithmetic in both engines), but never the top-1."""
    assert_matches(model, case, QUANTIZED_TOLERANCE)


def test_the_seed_example_is_what_the_readme_says(model: NextTokenModel) -> None:
    dist = model.distribution(SEED_TEXT, top=3)
    assert [c.text for c in dist.candidates] == ["わからない", "覚えて", "知"]
    assert [round(c.prob, 2) for c in dist.candidates] == [0.18, 0.11, 0.09]
    assert [t.text for t in dist.tokens] == ["我", "輩", "は", "猫", "である", "。", "名前", "は", "まだ"]


@pytest.mark.parametrize("para", PARAGRAPHS, ids=lambda p: p["title"])
def test_perplexity_of_encyclopedia_paragraphs_is_low_and_matches_llama_cpp(
        scores: dict[str, Score], para: dict) -> None:
    score = scores[para["title"]]
    exact = next(r for r in REFERENCE["float32"]["paragraphs"] if r["title"] == para["title"])
    quantized = next(r for r in REFERENCE["q4_k_m"]["paragraphs"] if r["title"] == para["title"])
    assert len(score.tokens) == exact["tokens"] == quantized["tokens"]
    assert score.perplexity < 100  # a broken forward pass gives thousands
    assert score.perplexity == pytest.approx(exact["perplexity"], rel=0.002)
    assert score.perplexity == pytest.approx(quantized["perplexity"], rel=0.03)


def test_perplexity_per_language_is_well_below_100(scores: dict[str, Score]) -> None:
    for lang in ("ja", "en"):
        logprobs = [t.logprob for p in PARAGRAPHS if p["lang"] == lang
                    for t in scores[p["title"]].tokens]
        assert math.exp(-float(np.mean(logprobs))) < 60, lang


def test_score_agrees_with_the_step_by_step_distribution(model: NextTokenModel) -> None:
    text = "猫は英語で cat です。"
    ids = model.encode(text)
    score = model.score(text)
    assert [t.id for t in score.tokens] == ids
    for k in (0, 3, len(ids) - 1):
        step = model.distribution(ids[:k], top=1)
        assert score.tokens[k].logprob == pytest.approx(math.log(step.probs[ids[k]]), abs=2e-3)
        assert score.tokens[k].top == step.candidates[0].text
    assert score.perplexity == pytest.approx(math.exp(-score.mean_logprob))


def test_temperature_reshapes_the_distribution(model: NextTokenModel) -> None:
    logits = model.next_logits(model.encode(SEED_TEXT))
    plain, sharp, flat = (probabilities(logits, t) for t in (1.0, 0.5, 1.5))
    for p in (plain, sharp, flat):
        assert p.sum() == pytest.approx(1.0)
    top = int(np.argmax(logits))
    assert sharp[top] > plain[top] > flat[top]
    greedy = probabilities(logits, 0.0)
    assert greedy[top] == 1.0 and greedy.sum() == 1.0
    at_zero = model.distribution(SEED_TEXT, temperature=0)
    assert at_zero.entropy_bits == 0 and at_zero.candidates[0].prob == 1.0
    with pytest.raises(InputError):
        probabilities(logits, -0.1)


def test_samples_follow_the_distribution(model: NextTokenModel) -> None:
    dist = model.distribution(SEED_TEXT, top=5)
    rng = np.random.default_rng(0)
    draws = [model.sample(dist, rng) for _ in range(2000)]
    share = sum(d.id == dist.candidates[0].id for d in draws) / len(draws)
    assert share == pytest.approx(dist.candidates[0].prob, abs=0.03)
    assert len({d.id for d in draws}) > 20  # not always the likeliest: why answers vary
    first = draws[0]
    assert first.prob == pytest.approx(float(dist.probs[first.id]))
    assert first.rank == 1 + int((dist.probs > dist.probs[first.id]).sum())
    greedy = model.distribution(SEED_TEXT, temperature=0)
    assert {model.sample(greedy, rng).id for _ in range(20)} == {dist.candidates[0].id}


def test_stepping_on_appends_the_token_not_a_retokenized_text(model: NextTokenModel) -> None:
    ids = model.encode(SEED_TEXT)
    first = model.distribution(ids).candidates[0]
    after = model.distribution([*ids, first.id])
    assert [t.id for t in after.tokens] == [*ids, first.id]
    assert model.decode([*ids, first.id]) == SEED_TEXT + first.text


def test_bad_input_gets_a_clear_message(model: NextTokenModel) -> None:
    with pytest.raises(InputError, match="no text to score"):
        model.score("")
    with pytest.raises(InputError, match="Shorten it"):
        model.distribution([5] * MAX_TOKENS)
    with pytest.raises(InputError, match="at least 1, not 0"):
        model.distribution("猫", top=0)
    with pytest.raises(InputError, match="outside the vocabulary"):
        model.token(model.config.vocab_size)
    empty = model.distribution("")  # only BOS: what a text starts with is a fair question
    assert empty.tokens == [] and empty.candidates


def test_word_vectors_put_related_words_together(model: NextTokenModel) -> None:
    words = ["beautiful", "beauty", "dog", "猫", "cat", "我輩"]
    vecs = wordvectors.word_vectors(model, words)
    sims = wordvectors.cosine_matrix([v.vector for v in vecs])
    assert np.allclose(np.diag(sims), 1.0)
    assert sims[0, 1] > sims[0, 2] + 0.1  # beautiful is nearer beauty than dog
    assert sims[3, 4] > sims[3, 1]  # 猫 is nearer cat than beauty
    assert vecs[0].tokens[0].piece == "▁beautiful" and vecs[0].note == "1 token"
    assert [t.text for t in vecs[5].tokens] == ["我", "輩"] and vecs[5].note == "mean of 2 tokens"
    near = [t.piece for t, _ in wordvectors.nearest_tokens(model, vecs[0].vector, 5, exclude=vecs[0].ids)]
    assert {"▁gorgeous", "▁lovely"} <= set(near), near
    assert wordvectors.id_bits(239959, 262144) == "111010100101010111"
    assert len(wordvectors.id_bits(0, model.config.vocab_size)) == 18
    assert wordvectors.parse_words("猫, 犬、cat\n\n猫 ,") == ["猫", "犬", "cat"]


def test_rag_next_json(lm_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["next", SEED_TEXT, "--top", "5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == "gemma-3-270m-q4_k_m" and data["text"] == SEED_TEXT
    assert [t["id"] for t in data["tokens"]][:2] == [237169, 241987]
    assert len(data["next"]) == 5 and data["next"][0]["text"] == "わからない"
    assert data["next"][0]["prob"] == pytest.approx(0.18, abs=0.01)
    assert sum(c["prob"] for c in data["next"]) < 1
    assert main(["next", SEED_TEXT, "--temperature", "0.5", "--sample", "3", "--seed", "1",
                 "--json"]) == 0
    sharp = json.loads(capsys.readouterr().out)
    assert sharp["temperature"] == 0.5 and sharp["next"][0]["prob"] > 0.3
    assert len(sharp["samples"]) == 3 and all(s["prob"] > 0 for s in sharp["samples"])


def test_rag_next_score_json(lm_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "The capital of France is Paris."
    assert main(["next", text, "--score", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["count"] == len(data["tokens"]) == 7
    assert [t["text"] for t in data["tokens"]][-2:] == [" Paris", "."]
    paris = data["tokens"][-2]
    assert paris["rank"] <= 3 and paris["prob"] > 0.05
    assert data["perplexity"] == pytest.approx(math.exp(-data["mean_logprob"]), rel=1e-3)


def test_rag_next_human_output_and_errors(lm_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["next", "The quick brown fox jumps over the lazy", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "' dog'" in out and "%" in out
    assert main(["next", "", "--score", "--json"]) == 1
    err = json.loads(capsys.readouterr().out)
    assert err["kind"] == "InputError" and "no text to score" in err["error"]
    assert main(["next", "猫", "--temperature", "-1", "--json"]) == 1
    assert "Temperature" in json.loads(capsys.readouterr().out)["error"]


def test_page_keeps_the_tokens_it_steps_through(lm_env: Path, model: NextTokenModel) -> None:
    from streamlit.testing.v1 import AppTest

    def page() -> None:
        from rag.ui.nexttoken import render_next_token_page

        render_next_token_page()

    at = AppTest.from_function(page, default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.text_area(key="nt_text").value == SEED_TEXT
    assert at.metric[0].value == "わからない" and at.metric[0].delta == "18.0%"
    # the top token's probability is no rise: no ↑ before it, and it says what it is
    assert at.metric[0].proto.direction == at.metric[0].proto.MetricDirection.NONE
    assert "probability" in at.metric[0].proto.delta_description
    seed_ids = model.encode(SEED_TEXT)
    at.button(key="nt_pick_2").click().run()  # 覚えて
    assert at.session_state["nt_ids"] == [*seed_ids, 210098]
    assert at.text_area(key="nt_text").value == SEED_TEXT + "覚えて"
    at.slider(key="nt_temperature").set_value(0.0).run()
    top = model.distribution([*seed_ids, 210098]).candidates[0]
    at.button(key="nt_sample").click().run()
    assert at.session_state["nt_ids"] == [*seed_ids, 210098, top.id]
    assert "rank 1" in at.info[0].value
    at.button(key="nt_undo").click().run()
    assert at.session_state["nt_ids"] == [*seed_ids, 210098]
    at.text_area(key="nt_text").input("Once upon a").run()  # typed text is read afresh
    assert at.session_state["nt_ids"] == model.encode("Once upon a")
    assert at.metric[0].value == "␣time"
    at.button(key="nt_reset").click().run()
    assert at.text_area(key="nt_text").value == SEED_TEXT
    assert not at.exception and not at.error


def test_a_cache_folder_that_cannot_be_written_says_what_to_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from rag.config import get_settings

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("RAG_LM_DIR", str(blocker / "lm"))
    get_settings.cache_clear()
    assert main(["next", "猫", "--json"]) == 1
    err = json.loads(capsys.readouterr().out)
    assert err["kind"] == "ConfigError" and "RAG_LM_DIR" in err["error"], err
