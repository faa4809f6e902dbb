"""`rag eval`: metric arithmetic on hand-made QA files, eval collections, JSONL against a corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag import store
from rag.answer.extractive import Candidate
from rag.answer.sentences import split_sentences
from rag.cli import main
from rag.config import get_settings
from rag.embed.providers import resolve
from rag.errors import LoadError
from rag.eval_answers import contains_gold, judge_sentences
from rag.evaluate import (
    Question,
    ensure_collection,
    eval_info,
    evaluate,
    first_gold_rank,
    load,
    same_source,
    sample,
)
from rag.ingest.pipeline import Ingestor
from rag.retrieve.hits import Hit

REPO = Path(__file__).resolve().parent.parent

# In BM25 mode the ranks are known by construction:
#   q0 "apple banana"     -> p1 (apple banana x2) beats its gold p0 (banana only): rank 2
#   q1 "cherry orchard"   -> only p2 has these words: rank 1
#   q2 "猫の名前"          -> p3 is the only Japanese paragraph: rank 1
#   q3 "zeppelin"         -> no paragraph has the word: a miss
SQUAD = {
    "data": [
        {"title": "Fruit", "paragraphs": [
            {"context": "Fruit [SEP] A banana is long and yellow.",
             "qas": [{"question": "apple banana", "id": "q0", "answers": []}]},
            {"context": "Fruit [SEP] apple banana apple banana smoothies.",
             "qas": []},
            {"context": "Fruit [SEP] The cherry orchard blooms in spring.",
             "qas": [{"question": "cherry orchard", "id": "q1", "answers": []}]},
        ]},
        {"title": "猫", "paragraphs": [
            {"context": "猫 [SEP] 吾輩は猫である。名前はまだ無い。",
             "qas": [{"question": "猫の名前", "id": "q2", "answers": []},
                     {"question": "zeppelin", "id": "q3", "answers": []}]},
        ]},
    ]
}


@pytest.fixture
def squad_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-squad.json"
    path.write_text(json.dumps(SQUAD, ensure_ascii=False), encoding="utf-8")
    return path


def test_recall_and_mrr_arithmetic(squad_file: Path, local_model) -> None:
    report = evaluate(squad_file, get_settings(), mode="bm25", k=10)
    assert report.ranks == [2, 1, 1, None]
    assert (report.questions, report.documents) == (4, 4)
    data = report.as_dict()
    assert data["recall@1"] == 0.5
    assert data["recall@5"] == data["recall@10"] == 0.75
    assert data["mrr@10"] == pytest.approx((1 / 2 + 1 + 1 + 0) / 4)
    assert len(report.latencies_ms) == 4 and data["latency_ms"]["p50"] > 0
    shallow = evaluate(squad_file, get_settings(), mode="bm25", k=1)
    assert shallow.ranks == [None, 1, 1, None]  # rank 2 is past k=1


def test_eval_collection_is_built_once_and_reused(squad_file: Path, local_model) -> None:
    settings = get_settings()
    dataset = load(squad_file)
    info = eval_info(resolve(settings), dataset.digest)
    assert info.collection_name.startswith("eval_") and info.collection_name.endswith("_512")
    assert ensure_collection(settings, info, dataset) == 4
    assert ensure_collection(settings, info, dataset) == 0
    coll = store.collection(settings, info)
    got = coll.get(ids=["p0"], include=["documents", "metadatas"])
    assert got["documents"] == ["Fruit [SEP] A banana is long and yellow."]
    assert got["metadatas"][0]["source"] == "Fruit#0"
    assert store.list_collections(settings) == []  # no main collection was made or written
    # a changed file gets its own collection
    changed = json.loads(squad_file.read_text(encoding="utf-8"))
    changed["data"][0]["paragraphs"][0]["context"] += " Bananas grow in bunches."
    squad_file.write_text(json.dumps(changed), encoding="utf-8")
    assert load(squad_file).digest != dataset.digest


@pytest.mark.parametrize("mode", ["vector", "hybrid"])
def test_vector_and_hybrid_modes_find_easy_paragraphs(squad_file: Path, local_model, mode: str) -> None:
    report = evaluate(squad_file, get_settings(), mode=mode, k=10)
    assert report.mode == mode
    assert report.ranks[1] == 1 and report.ranks[2] == 1
    assert report.recall(10) >= 0.75


def test_first_gold_rank_counts_documents_not_chunks() -> None:
    sources = ["a.md", "a.md", "b.md", "a.md", "c.md"]
    assert first_gold_rank(sources, "c.md", exact=True) == 3
    assert first_gold_rank(sources, "b.md", exact=True) == 2
    assert first_gold_rank(sources, "d.md", exact=True) is None
    assert first_gold_rank(["ja/x.md"], "x.md", exact=False) == 1


def test_source_matching_tolerates_roots_and_prefixes() -> None:
    assert same_source("ja/01_x.md", "ja/01_x.md")
    assert same_source("docs_corpus/ja/01_x.md", "ja/01_x.md")
    assert same_source("01_x.md", "ja/01_x.md")  # the ja folder itself was ingested
    assert not same_source("ja/01_x.md", "ja/02_y.md")
    assert not same_source("a01_x.md", "01_x.md")


def test_sample_is_seeded() -> None:
    questions = [Question(f"q{i}", "s") for i in range(100)]
    assert sample(questions, 10, 0) == sample(questions, 10, 0)
    assert sample(questions, 10, 0) != sample(questions, 10, 1)
    assert sample(questions, None, 0) == questions and sample(questions, 500, 0) == questions


def test_jsonl_against_an_ingested_corpus(corpus: Path, tmp_path: Path, local_model) -> None:
    Ingestor(get_settings()).ingest([corpus])
    qa = tmp_path / "qa.jsonl"
    rows = [
        {"question": "猫の名前はまだ無い", "source": "docs_corpus/ja/neko_sjis.txt"},
        {"question": "酢飯と魚介類の日本の料理", "source": "ja/sushi_eucjp.txt"},
        {"question": "How does Chroma return the cosine distance?", "source": "cosine.md"},
        {"question": "What is a tokenizer?", "source": "missing.md"},
    ]
    qa.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n", encoding="utf-8")
    report = evaluate(qa, get_settings(), mode="hybrid", k=5)
    assert report.ranks[:3] == [1, 1, 1]
    assert report.ranks[3] is None
    assert report.missing_sources == ["missing.md"]
    assert report.documents == 5
    assert report.as_dict()["recall@1"] == 0.75


def test_jsonl_with_no_known_source_says_what_to_ingest(corpus: Path, tmp_path: Path, local_model) -> None:
    Ingestor(get_settings()).ingest([corpus])
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"question": "x", "source": "nowhere/else.md"}) + "\n", encoding="utf-8")
    with pytest.raises(LoadError, match="rag ingest"):
        evaluate(qa, get_settings())


def test_bad_file_is_a_load_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "no source"}\n', encoding="utf-8")
    with pytest.raises(LoadError, match="bad.jsonl:1"):
        load(bad)


def test_cli_eval_json_shape(squad_file: Path, local_model, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", str(squad_file), "--mode", "bm25", "--max-questions", "3", "--seed", "1",
                 "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {"mode", "questions", "documents", "recall@1", "recall@5", "recall@10", "mrr@10",
            "latency_ms", "embedding"} <= set(data)
    assert set(data["latency_ms"]) == {"p50", "p95"}
    assert data["embedding"] == {"provider": "local", "model": "use-multilingual-v3", "dims": 512}
    assert (data["mode"], data["questions"], data["documents"]) == ("bm25", 3, 4)


def test_cli_eval_table(squad_file: Path, local_model, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(squad_file), "--mode", "bm25"]) == 0
    out = capsys.readouterr().out
    assert "recall@1     0.500" in out and "MRR@10       0.625" in out
    assert "questions    4" in out and "use-multilingual-v3" in out


def test_cli_eval_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(tmp_path / "nope.json"), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["kind"] == "LoadError"


# -- answers end to end (`--answers`, `--unanswerable`) -------------------------------------------

ANSWERED = {
    "data": [
        {"title": "Garden", "paragraphs": [
            {"context": "Garden [SEP] The cherry orchard blooms in spring. Its fruit is picked in June.",
             "qas": [{"question": "When does the cherry orchard bloom?", "id": "a0",
                      "answers": [{"text": "in spring", "answer_start": 38}]}]},
            {"context": "Garden [SEP] 吾輩は猫である。名前はまだ無い。猫は縁側で眠る。",
             "qas": [{"question": "猫の名前は何ですか？", "id": "a1",
                      "answers": [{"text": "名前はまだ 無い", "answer_start": 0}]}]},
        ]},
    ]
}


def test_contains_gold_normalises_width_case_and_spaces() -> None:
    assert contains_gold("答えは ＡＢＣ １２３ です[1]。", ["abc123"])
    assert contains_gold("名前はまだ無い[1]。", ["名前はまだ 無い"])
    assert not contains_gold("名前はある[1]。", ["名前はまだ無い"])
    assert not contains_gold("anything", ["", "  "])


def test_answers_run_the_apps_answerer_end_to_end(tmp_path: Path, local_model) -> None:
    path = tmp_path / "answered.json"
    path.write_text(json.dumps(ANSWERED, ensure_ascii=False), encoding="utf-8")
    report = evaluate(path, get_settings(), answers=True)
    assert load(path).questions[1].answers == ("名前はまだ 無い",)
    data = report.as_dict()
    assert data["answer_contains"] == 1.0 and data["answered"] == 1.0 and data["cites_gold"] == 1.0
    assert data["answer_mode"] == "extractive" and data["answer_k"] == get_settings().top_k
    assert data["lead_contains"] == 1.0  # the best sentence alone holds each gold string
    # each of the two paragraphs is its own document: a sentence quoted from the other one is
    # off topic, and the figures say so consistently
    assert 0 < data["sentence_precision"] <= 1
    assert (data["sentence_precision"] == 1.0) == (data["off_topic_answers"] == 0.0)
    # the same answers the app gives, over the eval collection
    from rag.answer.answerer import Answerer
    from rag.retrieve.searcher import Searcher

    info = eval_info(resolve(get_settings()), load(path).digest)
    answerer = Answerer(get_settings(), searcher=Searcher(get_settings(), info))
    texts = [answerer.answer(q.text).text for q in load(path).questions]
    assert "in spring" in texts[0] and "名前はまだ無い" in texts[1]
    assert data["mean_answer_chars"] == pytest.approx(sum(map(len, texts)) / 2, abs=0.05)
    assert report.answers is not None and "answer_contains" not in evaluate(path, get_settings()).as_dict()


def test_jsonl_lines_may_carry_gold_answers(tmp_path: Path) -> None:
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"question": "Why chunk?", "source": "docs_corpus/ja/06_chunk_bunkatsu.md",
                              "answers": ["入力できる長さの上限", " "]}, ensure_ascii=False) + "\n"
                  + json.dumps({"question": "No gold", "source": "ja/01_embedding_toha.md"}) + "\n",
                  encoding="utf-8")
    first, second = load(qa).questions
    assert first.answers == ("入力できる長さの上限",) and first.gold == "ja/06_chunk_bunkatsu.md"
    assert second.answers == ()
    (tmp_path / "bad.jsonl").write_text('["a list, not an object"]\n', encoding="utf-8")
    with pytest.raises(LoadError):
        load(tmp_path / "bad.jsonl")


def test_the_checked_in_focus_set_has_gold_strings_for_every_question() -> None:
    questions = load(REPO / "docs_corpus" / "qa_focus.jsonl").questions
    assert len(questions) >= 20 and all(q.answers for q in questions)
    assert {q.gold.split("/")[0] for q in questions} == {"ja", "en"}


def test_judge_sentences_reads_the_best_sentence_and_the_off_topic_ones() -> None:
    garden = Hit("g", 2, "The cherry orchard blooms in spring. Its fruit is picked in June.",
                 {"source": "Garden#0"}, 0.5)
    cats = Hit("c", 1, "Cats sleep all day.", {"source": "Cats#1"}, 0.6)
    bloom, fruit = (Candidate(garden, s) for s in split_sentences(garden.text))
    nap = Candidate(cats, split_sentences(cats.text)[0])
    bloom.score, fruit.score, nap.score = 1.0, 0.5, 0.9
    question = Question("When does the cherry orchard bloom?", "Garden#0", ("in spring",))
    judged = judge_sentences([nap, bloom, fruit], question, exact=True)
    assert (judged.lead_contains, judged.supported, judged.quoted) == (True, 2, 3)
    nap.score = 2.0  # now the off-topic sentence leads: the answer is right only by its extra
    assert not judge_sentences([nap, bloom], question, exact=True).lead_contains
    # a sentence from another document still supports the answer when it holds a gold string
    elsewhere = Question("When does the cherry orchard bloom?", "Elsewhere#9", ("in spring",))
    assert judge_sentences([bloom, fruit, nap], elsewhere, exact=True).supported == 1


def test_answers_on_jsonl_have_no_gold_strings(corpus: Path, tmp_path: Path, local_model) -> None:
    Ingestor(get_settings()).ingest([corpus])
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"question": "寿司はどこで広まりましたか？", "source": "ja/sushi_eucjp.txt"},
                             ensure_ascii=False) + "\n", encoding="utf-8")
    data = evaluate(qa, get_settings(), answers=True).as_dict()
    assert data["answer_contains"] is None and data["answered"] == 1.0 and data["cites_gold"] == 1.0


def test_cli_answers_and_unanswerable(corpus: Path, tmp_path: Path, local_model,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "answered.json"
    path.write_text(json.dumps(ANSWERED, ensure_ascii=False), encoding="utf-8")
    assert main(["eval", str(path), "--answers"]) == 0
    out = capsys.readouterr().out
    rows = dict(line.split(None, 1) for line in out.splitlines() if line.strip())
    assert rows["answer_contains"].strip() == "1.000" and "mean_answer_chars" in rows
    assert rows["lead_contains"].strip() == "1.000" and "sentence_precision" in rows
    assert "off_topic_answers" in rows
    assert main(["eval", str(path), "--answers", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"answer_contains", "mean_answer_chars", "answered", "cites_gold", "lead_contains",
            "sentence_precision", "off_topic_answers"} <= set(data)

    assert main(["eval", str(path), "--unanswerable"]) == 1  # nothing ingested yet: says what to do
    assert "rag ingest" in capsys.readouterr().err
    Ingestor(get_settings()).ingest([corpus])
    off_topic = tmp_path / "off-topic.json"
    off_topic.write_text(json.dumps({"data": [{"title": "x", "paragraphs": [{
        "context": "x", "qas": [{"question": q, "id": str(i), "answers": []} for i, q in enumerate(
            ["Who won the 2022 FIFA World Cup?", "富士山の高さは何メートルですか？", "asdfghjkl"])]}]}]},
        ensure_ascii=False), encoding="utf-8")
    assert main(["eval", str(off_topic), "--unanswerable", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["questions"] == 3 and data["not_found"] == 1.0 and data["answered_examples"] == []
