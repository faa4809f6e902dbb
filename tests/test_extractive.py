"""Extractive answers chosen by evidence, and honest "not in the documents", on the real corpus.

The sentence rules are pinned on hand-made text; the chooser and the abstention run end to end on
the bundled docs_corpus with the real local model and real Chroma (ingested once per module).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag import store
from rag.answer.answerer import NO_ANSWER, Answer, Answerer, cite
from rag.answer.evidence import CALIBRATIONS
from rag.answer.extractive import question_terms
from rag.answer.markup import shown
from rag.answer.sentences import split_sentences
from rag.config import get_settings
from rag.ingest.pipeline import Ingestor

REPO = Path(__file__).resolve().parent.parent


# -- which sentences may be quoted ---------------------------------------------------------------


def test_abbreviations_do_not_cut_a_sentence() -> None:
    text = ("Pochi's vet is Dr. Sato. He moved from the U.S. in 2010. Use e.g. BM25 first. "
            "Version 3.5 is out. J. K. Rowling wrote it.")
    assert [s.text for s in split_sentences(text)] == [
        "Pochi's vet is Dr. Sato.", "He moved from the U.S. in 2010.", "Use e.g. BM25 first.",
        "Version 3.5 is out.", "J. K. Rowling wrote it.",
    ]


def test_headings_code_and_shell_commands_are_never_quotable() -> None:
    text = (
        "# 取り込み\n\n文書は次のコマンドで取り込みます。\n\n```\nrag ingest manual.pdf notes/ faq.md\n"
        "python -m rag ask what is this long enough line\n```\n\n$ pip install something-long-enough\n"
        "RAG_TOP_K=8 rag ask \"長い質問をここに書きます\"\nrag ingest docs_corpus --prune\n"
        "| 列 | 値 |\n<b>見出しのような行</b>\nThe command prints one JSON document.\n"
    )
    texts = [s.text for s in split_sentences(text)]
    assert texts == ["文書は次のコマンドで取り込みます。", "The command prints one JSON document."]
    assert split_sentences(text)[0].heading == "取り込み" and split_sentences(text)[0].lead


def test_announcements_are_marked_and_list_items_kept_whole() -> None:
    text = ("同じ内容でも日本語はトークンが多くなりがちです。理由は主に二つあります。\n\n"
            "1. UTF-8 では仮名も漢字も3バイトです。英語は1バイトです。\n2. 語彙の学習は英語が中心です。\n"
            "There are two reasons:\n- it is fast.\n")
    split = split_sentences(text)
    assert [(s.text, s.announces, s.item) for s in split] == [
        ("同じ内容でも日本語はトークンが多くなりがちです。", False, False),
        ("理由は主に二つあります。", True, False),
        ("UTF-8 では仮名も漢字も3バイトです。英語は1バイトです。", False, True),
        ("語彙の学習は英語が中心です。", False, True),
        ("There are two reasons:", True, False),
        ("it is fast.", False, True),
    ]


def test_a_numbered_title_in_capitals_is_a_heading_not_a_quote() -> None:
    text = ("2. DIMENSION MISMATCH BETWEEN MODEL AND COLLECTION\n\nSymptom: an error mentioning that the "
            "embedding dimension does not match the collection, for example 1536 against 512.\n")
    sentences = split_sentences(text)
    assert [s.text for s in sentences] == [
        "Symptom: an error mentioning that the embedding dimension does not match the collection, for "
        "example 1536 against 512."]
    assert sentences[0].heading == "DIMENSION MISMATCH BETWEEN MODEL AND COLLECTION" and sentences[0].lead


def test_a_chunk_cut_inside_a_sentence_offers_no_tail_of_it() -> None:
    # A chunk of en/hnsw_approximate_search.html starts after "ef_search" in
    # "ef_search: the candidate-list length used at query time."
    text = (": the candidate-list length used at query time. This is the main speed-versus-recall dial: "
            "raising it explores more of the graph, so recall rises and queries get slower.")
    assert [s.text for s in split_sentences(text)] == [
        "This is the main speed-versus-recall dial: raising it explores more of the graph, so recall "
        "rises and queries get slower."]


# -- what the quote shows ------------------------------------------------------------------------


def test_quotes_show_what_the_reader_sees_not_the_markdown() -> None:
    # sentences of docs_corpus/en/*.md as the splitter quotes them
    assert shown("**fetch_k** is the size of the candidate pool.") == "fetch_k is the size of the candidate pool."
    assert shown("The practical rule: **never reuse a threshold across models**.") == \
        "The practical rule: never reuse a threshold across models."
    assert shown("Chroma, the vector store this app uses, always reports a *distance* (smaller is better), "
                 "never a similarity.") == ("Chroma, the vector store this app uses, always reports a "
                                            "distance (smaller is better), never a similarity.")
    assert shown("**lambda** (called `lambda_mult` in LangChain) sets the balance.") == \
        "lambda (called `lambda_mult` in LangChain) sets the balance."
    # code keeps its backticks and its asterisks; names keep their underscores; bold inside Japanese
    assert shown("**Start with `pca`.** It is fast.") == "Start with `pca`. It is fast."
    formula = "Multiply the two vectors component by component: `a·b = a1*b1 + ... + an*bn`."
    assert shown(formula) == formula
    assert shown("ef_search and fetch_k, 2 * 3 and 2*3 stay.") == "ef_search and fetch_k, 2 * 3 and 2*3 stay."
    assert shown("詳しくは[取り込みの説明](docs/ingest.md)と**注意点**を見てください。") == \
        "詳しくは取り込みの説明と注意点を見てください。"
    assert shown("See ![the map](map.png) or <https://example.com/x>.") == "See the map or https://example.com/x."
    # a link that leads out of the document keeps its address in view: the quote is not a link
    assert shown("[公式の再設定ページ](https://evil.example/phish) から再設定してください。") == \
        "公式の再設定ページ (https://evil.example/phish) から再設定してください。"


def test_a_list_item_quoted_alone_ends_as_a_sentence_with_its_citation_before_the_stop() -> None:
    assert cite("chunks overlap heavily, so neighbouring chunks are near-duplicates;", 1) == \
        "chunks overlap heavily, so neighbouring chunks are near-duplicates [1]."
    assert cite("ほぼ同じ内容のチャンクが並ぶ、", 2) == "ほぼ同じ内容のチャンクが並ぶ[2]。"
    assert cite("ID：レコードを一意に識別する文字列", 1) == "ID：レコードを一意に識別する文字列[1]。"
    assert cite("英語の資料の内容を日本語に訳して答えること（選ばれた文は原文のまま表示されます）", 1) == \
        "英語の資料の内容を日本語に訳して答えること（選ばれた文は原文のまま表示されます）[1]。"
    assert cite("保存量も増えます。", 3) == "保存量も増えます[3]。"
    assert cite("MRR is the average over all questions.", 1) == "MRR is the average over all questions [1]."


def test_question_terms_leave_out_how_it_is_asked() -> None:
    terms = question_terms("エンベディングとは何ですか？", lambda t: 1.0)
    assert sorted(terms.idf) == ["ィン", "エン", "ディ", "ベデ", "ング", "ンベ"]
    assert terms.coverage("埋め込み（エンベディング）とは") == 1.0
    # a few shared bigrams of another word count for little: (3/6)^2 of the word
    assert terms.coverage("グラウンディングと呼びます") == pytest.approx(0.25)
    assert sorted(question_terms("What is the capital of France?", lambda t: 1.0).idf) == ["capital", "france"]


# -- end to end on docs_corpus -------------------------------------------------------------------


def _ingest_docs_corpus(data: Path, **env: str) -> Path:
    """docs_corpus ingested into `data` under exactly these settings (and no other RAG_* ones)."""
    patch = pytest.MonkeyPatch()
    for name in list(os.environ):
        if name.startswith(("RAG_", "OPENAI_", "CHROMA_")):
            patch.delenv(name, raising=False)
    patch.setenv("RAG_DATA_DIR", str(data))
    for name, value in env.items():
        patch.setenv(name, value)
    get_settings.cache_clear()
    store.reset_clients()
    report = Ingestor(get_settings()).ingest([REPO / "docs_corpus"])
    assert not report.failed
    patch.undo()
    get_settings.cache_clear()
    store.reset_clients()
    return data


@pytest.fixture(scope="module")
def docs_data(tmp_path_factory: pytest.TempPathFactory, local_model) -> Iterator[Path]:
    """docs_corpus ingested once with the local USE model into a data dir of its own."""
    yield _ingest_docs_corpus(tmp_path_factory.mktemp("docs") / "data", RAG_LOCAL_MODEL="use")


@pytest.fixture
def docs(docs_data: Path, monkeypatch: pytest.MonkeyPatch) -> Answerer:
    monkeypatch.setenv("RAG_DATA_DIR", str(docs_data))
    get_settings.cache_clear()
    store.reset_clients()
    return Answerer(get_settings())


def test_first_question_gets_the_definition(docs: Answerer) -> None:
    answer = docs.answer("エンベディングとは何ですか？")
    assert not answer.not_found
    definition = ("埋め込み（embedding）とは、文章や単語のような記号の並びを、決まった長さの数値の並び"
                  "（ベクトル）に変換したものです[1]。")
    assert answer.text.startswith(definition), answer.text
    assert answer.cited_hits()[0].source == "ja/01_embedding_toha.md"
    assert "Greedy descent" not in answer.text


def test_an_announcement_is_replaced_by_what_it_announces(docs: Answerer) -> None:
    answer = docs.answer("文書をチャンクに分割する理由は何ですか？")
    assert "理由は二つあります" not in answer.text
    assert "第一に、埋め込みモデルには一度に入力できる長さの上限があります" in answer.text
    assert "第二に、" in answer.text
    assert {h.source for h in answer.cited_hits()} == {"ja/06_chunk_bunkatsu.md"}


def _sentences(answer: Answer) -> int:
    return answer.text.count("[")


@pytest.mark.parametrize("question", [
    "富士山の高さは何メートルですか？", "Who won the 2022 FIFA World Cup?", "天気", "ラーメン", "asdfghjkl",
])
def test_out_of_corpus_questions_are_declined_with_a_reason_and_the_nearest_chunks(
    docs: Answerer, question: str
) -> None:
    answer = docs.answer(question)
    lang = "ja" if question in ("富士山の高さは何メートルですか？", "天気", "ラーメン") else "en"
    assert answer.not_found and answer.citations == []
    assert answer.text.startswith(NO_ANSWER[lang])
    why = answer.text[len(NO_ANSWER[lang]):]
    assert ("類似度" in why) if lang == "ja" else ("similarity" in why)
    assert f"{CALIBRATIONS['use-multilingual-v3'].cosine:.2f}" in why
    assert len(answer.search.hits) == 5  # the nearest chunks are still there to be shown
    assert answer.as_dict()["not_found"] is True


def test_a_source_filter_does_not_make_an_unrelated_question_answerable(docs: Answerer) -> None:
    answer = docs.answer("ラーメンのおいしい店はどこですか？", sources=["ja/06_chunk_bunkatsu.md"])
    assert answer.not_found
    assert answer.search.hits and {h.source for h in answer.search.hits} == {"ja/06_chunk_bunkatsu.md"}
    related = docs.answer("チャンクの重なりは何のためにありますか？", sources=["ja/06_chunk_bunkatsu.md"])
    assert not related.not_found and related.citations


def test_answerable_questions_are_still_answered(docs: Answerer) -> None:
    rows = [json.loads(line) for line in (REPO / "docs_corpus" / "qa.jsonl").read_text().splitlines()]
    for row in rows[::4]:  # 18 of the 70, both languages
        answer = docs.answer(row["question"])
        assert not answer.not_found, (row["question"], answer.text)
        assert 1 <= _sentences(answer) and len(answer.citations) <= 3


def test_abstention_can_be_switched_off(docs: Answerer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_ANSWER_ABSTAIN", "false")
    get_settings.cache_clear()
    answer = Answerer(get_settings()).answer("天気")
    assert not answer.not_found and answer.citations


def test_wrapped_pdf_lines_are_joined_and_titles_and_fragments_left_out() -> None:
    text = ("commands cover it. Search shows what retrieval finds.\n後から変えられない設定\n"
            "コレクションの距離の種類（l2、ip、cosine）は、コレクションを作るときに決まり、後から変\n"
            "更できません。距離の種類を変えたい場合は作り直します。\nApproximate nearest neighbour search and HNSW\n"
            "HNSW (Hierarchical Navigable Small World), published by Malkov, is the most widely used\n"
            "index in vector databases today.\n")
    assert [s.text for s in split_sentences(text)] == [
        "Search shows what retrieval finds.",
        "コレクションの距離の種類（l2、ip、cosine）は、コレクションを作るときに決まり、後から変更できません。",
        "距離の種類を変えたい場合は作り直します。",
        "HNSW (Hierarchical Navigable Small World), published by Malkov, is the most widely used "
        "index in vector databases today.",
    ]


def test_prose_that_starts_with_a_command_word_is_a_sentence_and_a_cut_tail_is_not() -> None:
    text = ("Three commands cover it. rag search shows what retrieval finds, and rag ask answers.\n"
            " $ rag search \"How does HNSW trade speed for recall?\" -k 5\n"
            "This is the most useful command when an answer looks wrong. If the chunk that contains the")
    assert [s.text for s in split_sentences(text)] == [
        "Three commands cover it.", "rag search shows what retrieval finds, and rag ask answers.",
        "This is the most useful command when an answer looks wrong.",
    ]


def test_run_in_labels_inline_code_and_bold_markup_do_not_make_sentences() -> None:
    hnsw = ("It stores the vectors as nodes in a graph.\n"
            "Layers. Every vector is in the bottom layer. A random subset is also placed in higher layers.\n"
            "Candidate list. The length of this list is the ef parameter.\n")
    sentences = split_sentences(hnsw)
    assert [s.text for s in sentences] == [
        "It stores the vectors as nodes in a graph.", "Every vector is in the bottom layer.",
        "A random subset is also placed in higher layers.", "The length of this list is the ef parameter.",
    ]
    assert (sentences[1].heading, sentences[1].lead) == ("Layers", True)
    markdown = ("**Dot product.** Multiply the two vectors component by component: "
                "`a·b = a1*b1 + ... + an*bn`. The result grows with their lengths.\n"
                "* A list item with a star.\n")
    assert [s.text for s in split_sentences(markdown)] == [
        "Multiply the two vectors component by component: `a·b = a1*b1 + ... + an*bn`.",
        "The result grows with their lengths.", "A list item with a star.",
    ]
    assert [s.text for s in split_sentences("Filters interact.\nLayers.")] == []  # bare labels
    announced = split_sentences("一方で、次のようなことはできません。\n- 要約したりすること。\n"
                                "抽出モードは次の手順で回答を作ります。次の年に改訂されました。")
    assert [s.announces for s in announced] == [True, False, True, False]


def test_an_off_topic_sentence_from_a_lower_ranked_document_is_not_appended(docs: Answerer) -> None:
    # Before: the definition, one more sentence of it, then 「回答を、検索で取り出した資料の内容に
    # 結び付けることをグラウンディングと呼びます[2]。」 from the second-ranked document.
    answer = docs.answer("エンベディングとは何ですか？")
    assert answer.search.hits[1].source != "ja/01_embedding_toha.md"
    assert "グラウンディング" not in answer.text
    assert {h.source for h in answer.cited_hits()} == {"ja/01_embedding_toha.md"}
    assert len(answer.quoted) == 3  # the room went to the definition's own chunk


def test_a_drawback_question_gets_the_drawback_not_only_the_definition(docs: Answerer) -> None:
    answer = docs.answer("オーバーラップを大きくしすぎるとどうなりますか？")
    assert "ただし重ねすぎると、ほぼ同じ内容のチャンクが検索結果に何件も並ぶようになり" in answer.text
    answer = docs.answer("When does MMR hurt?")
    assert "It can hurt when the question needs two chunks that are genuinely similar" in answer.text


def test_answers_quote_text_not_markdown_and_list_items_read_as_sentences(docs: Answerer) -> None:
    # Before: "**fetch_k** is the size of the candidate pool [1]." and
    # "… near-duplicates; [1] the corpus contains copies …; [1] It can hurt …"
    for question, quote in [
        ("What is fetch_k in MMR?", "fetch_k is the size of the candidate pool [1]."),
        ("Can I reuse a similarity threshold when I switch embedding models?",
         "The practical rule: never reuse a threshold across models [1]."),
    ]:
        answer = docs.answer(question)
        assert quote in answer.text and "*" not in answer.text, answer.text
        assert any("**" in c.text for c in answer.quoted)  # what was scored is the sentence as written
    answer = docs.answer("When does MMR hurt?")
    assert "; [" not in answer.text and "near-duplicates [1]." in answer.text, answer.text


@pytest.mark.parametrize(("question", "reason"), [
    # the document's sentence after the reason starts 「そのため、…起きやすくなります。」
    ("ハルシネーションはなぜ起きるのですか？", "「正しいかどうか」を確かめる仕組みは本来備わっていません"),
    # the question copies "A Japanese query … may therefore rank …"; the reason is the sentence before
    ("Why might a Japanese query rank a loosely related Japanese chunk above a precise English one?",
     "a query scores somewhat higher against texts in its own language"),
])
def test_a_why_question_gets_the_reason_a_therefore_sentence_follows_from(
    docs: Answerer, question: str, reason: str
) -> None:
    assert reason in docs.answer(question).text


@pytest.fixture(scope="module")
def e5_docs_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """docs_corpus ingested with e5 (its bundled vectors make this quick)."""
    yield _ingest_docs_corpus(tmp_path_factory.mktemp("docs-e5") / "data", RAG_EMBEDDING_PROVIDER="e5")


@pytest.fixture
def e5_answerer(e5_docs_data: Path, monkeypatch: pytest.MonkeyPatch) -> Answerer:
    """An Answerer on the e5-ingested docs_corpus."""
    monkeypatch.setenv("RAG_DATA_DIR", str(e5_docs_data))
    monkeypatch.setenv("RAG_EMBEDDING_PROVIDER", "e5")
    get_settings.cache_clear()
    store.reset_clients()
    return Answerer(get_settings())


def test_e5_has_its_own_bar_and_answers_the_first_question(e5_answerer: Answerer) -> None:
    answerer = e5_answerer
    assert answerer.searcher.info.model == "multilingual-e5-small"
    first = answerer.answer("エンベディングとは何ですか？")
    assert not first.not_found and first.cited_hits()[0].source == "ja/01_embedding_toha.md"
    assert first.text.startswith("埋め込み（embedding）とは、文章や単語のような記号の並びを")
    bar = CALIBRATIONS["multilingual-e5-small"].cosine
    assert bar > CALIBRATIONS["use-multilingual-v3"].cosine + 0.3  # e5's cosines sit high
    for question in ["富士山の高さは何メートルですか？", "Who won the 2022 FIFA World Cup?", "天気", "ラーメン",
                     "asdfghjkl"]:
        answer = answerer.answer(question)
        assert answer.not_found, (question, answer.text)
        assert f"{bar:.2f}" in answer.text and len(answer.search.hits) == 5


def test_e5_answers_what_hnsw_trades_off_not_only_what_it_is(e5_answerer: Answerer) -> None:
    answer = e5_answerer.answer("What does HNSW trade off?")
    trade = "Approximate nearest neighbour (ANN) search trades a little accuracy for a large speed-up"
    assert answer.text.startswith(trade), answer.text
    assert {h.source for h in answer.cited_hits()} == {"en/hnsw_approximate_search.html"}
    assert "Layers [" not in answer.text


def test_a_decline_never_says_a_question_holds_zero_percent_of_its_terms() -> None:
    from rag.answer.evidence import Evidence

    cal = CALIBRATIONS["multilingual-e5-small"]
    none = Evidence(cosine=0.80, coverage=0.0, calibration=cal)
    assert "一つも含んでいません" in none.why_not("ja") and "0%" not in none.why_not("ja")
    assert "none of the question's terms" in none.why_not("en") and "0%" not in none.why_not("en")
    some = Evidence(cosine=0.80, coverage=0.25, calibration=cal)
    assert "25%" in some.why_not("ja") and "25%" in some.why_not("en")


def test_modes_are_named_in_the_sentences_language() -> None:
    from rag.ui.i18n import mode_name

    assert mode_name("hybrid", "ja") == "ハイブリッド" and mode_name("hybrid", "en") == "hybrid"
    assert mode_name("bm25", "ja").startswith("キーワード") and mode_name("other", "ja") == "other"
