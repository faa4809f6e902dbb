"""What kind of answer a question asks for, and which real corpus sentences read like one."""

from __future__ import annotations

import pytest

from rag.answer.focus import focus_of, follows_from_before, has_marker


@pytest.mark.parametrize(("question", "kind"), [
    ("What does HNSW trade off?", "drawback"),
    ("What is the downside of raising ef_search?", "drawback"),
    ("小さいチャンクの欠点は何ですか？", "drawback"),
    ("オーバーラップを大きくしすぎるとどうなりますか？", "drawback"),
    ("チャンクに分割する理由は？", "reason"),
    ("ハルシネーションはなぜ起きるのですか？", "reason"),
    ("Why is brute-force search a problem for large collections?", "reason"),
    ("BM25 とベクトル検索の違いは何ですか？", "difference"),
    ("RAG とファインチューニングはどう使い分けますか？", "difference"),
    ("How do I turn a Chroma cosine distance back into a similarity?", "way"),
    ("スキャンした PDF を取り込むにはどうすればよいですか？", "way"),
    ("When does MMR hurt?", "time"),
    ("When should I use RAG instead of fine-tuning a model on my documents?", "time"),
])
def test_focus_questions_are_recognised(question: str, kind: str) -> None:
    assert kind in focus_of(question)


@pytest.mark.parametrize("question", [
    "エンベディングとは何ですか？", "PCA でいう寄与率とは、何を表す数値ですか？", "Who proposed BM25?",
    "検索拡張生成という手法は、いつごろ誰が発表したものですか？", "When did the Normans conquer England?",
])
def test_plain_questions_ask_for_no_particular_kind(question: str) -> None:
    assert focus_of(question) == frozenset()


def test_the_sentence_that_answers_carries_the_marker_and_the_definition_does_not() -> None:
    trade = focus_of("What does HNSW trade off?")
    assert has_marker("Approximate nearest neighbour (ANN) search trades a little accuracy for a large "
                      "speed-up.", trade)
    assert has_marker("Higher values build a better-connected graph, improving recall at search time, "
                      "at the price of slower ingestion.", trade)
    assert not has_marker("HNSW (Hierarchical Navigable Small World), published by Malkov and Yashunin in "
                          "2016, is the most widely used ANN index and the one Chroma uses.", trade)
    why = focus_of("チャンクに分割する理由は？")
    assert has_marker("モデルの入力上限や料金はトークン数で決まるうえ、文字数とトークン数の関係は言語によって"
                      "大きく違うからです。", why)
    assert not has_marker("一つのチャンクには一つの話題が入っている状態が理想です。", why)
    small = focus_of("小さいチャンクの欠点は何ですか？")
    assert has_marker("小さいチャンク：話題が絞られるので検索は正確になりやすい一方、回答に必要な前後の文脈が"
                      "欠けがちです。", small)
    assert not has_marker("隣り合うチャンクの境目を少し重ねておくことをオーバーラップといいます。", small)
    assert not has_marker("anything at all, because of everything", frozenset())


def test_a_consequence_points_back_to_its_reason() -> None:
    assert follows_from_before("そのため、次のような条件でハルシネーションが起きやすくなります。")
    assert follows_from_before("A Japanese query about cosine similarity may therefore rank a loosely related "
                               "Japanese chunk above a precise English one.")
    assert not follows_from_before("選ばれる基準は「ありそうかどうか」であって、「正しいかどうか」を確かめる仕組みは"
                                   "本来備わっていません。")
    assert not follows_from_before("Short queries suffer most, because they carry fewer meaning cues to "
                                   "outweigh the language signal.")
    assert not follows_from_before("It is also so fast that nobody notices.")
    assert not follows_from_before("So-called dense retrieval compares vectors.")
    assert not follows_from_before("So far every example used one document.")
    assert follows_from_before("So, the first hit is not always the best one.")
