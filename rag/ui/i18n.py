"""UI strings in Japanese and English; messages follow the language of the user's question.

Sidebar labels are bilingual (they are read before any question is asked); messages about a
particular question use that question's language (`lang_of`). No Streamlit import here.
"""

from __future__ import annotations

from rag.lang import lang_of

__all__ = ["lang_of", "t", "both", "mode_name", "MODE_NAMES"]

MODE_NAMES: dict[str, dict[str, str]] = {
    "vector": {"ja": "ベクトル", "en": "vector"},
    "bm25": {"ja": "キーワード（BM25）", "en": "BM25"},
    "hybrid": {"ja": "ハイブリッド", "en": "hybrid"},
}
"""Retrieval modes as a sentence in each language names them."""


def mode_name(mode: str, lang: str) -> str:
    """`hybrid` as a Japanese sentence says it (ハイブリッド); an unknown mode as it is."""
    return MODE_NAMES.get(mode, {}).get(lang, mode)


_STRINGS: dict[str, dict[str, str]] = {
    "sources": {"ja": "出典", "en": "Sources"},
    "cited": {"ja": "引用", "en": "cited"},
    "score": {"ja": "類似度", "en": "similarity"},
    "vector": {"ja": "ベクトル", "en": "vector"},
    "page": {"ja": "ページ", "en": "page"},
    "percentile": {"ja": "全チャンクの {p:.0f}% より上", "en": "beats {p:.0f}% of chunks"},
    "debug": {"ja": "🔍 埋め込みを見る", "en": "🔍 Show me the embedding"},
    "thinking": {"ja": "検索中…", "en": "Searching…"},
    "no_hits": {
        "ja": "しきい値を超える出典がありません。しきい値を下げるか、出典の絞り込みを外してください。",
        "en": "No source passed the score threshold: lower it or clear the source filter.",
    },
    "unexpected": {
        "ja": "予期しないエラーが発生しました（{kind}）。詳細はサーバーのログにあります。",
        "en": "Something unexpected went wrong ({kind}). Details are in the server log.",
    },
    "llm_answer": {"ja": "LLM の回答", "en": "LLM answer"},
    "rewritten": {"ja": "検索に使った質問", "en": "Question used for retrieval"},
    "indexing": {
        "ja": "取り込み中 {done}/{total} ファイル（{stored}/{chunks} チャンク検索可能）: "
              "この回答は取り込み済みの文書だけから作っています。",
        "en": "indexing {done}/{total} files ({stored}/{chunks} chunks searchable): this answer "
              "uses only the documents indexed so far.",
    },
    "indexing_empty": {
        "ja": "取り込み中 {done}/{total} ファイル: まだ検索できるチャンクがありません。数秒後にもう一度質問してください。",
        "en": "indexing {done}/{total} files: nothing is searchable yet; ask again in a few seconds.",
    },
    "empty_store": {
        "ja": "まだ文書がありません。サイドバーからファイルを追加するか、`rag ingest PATH` を実行してから質問してください。",
        "en": "No documents yet: add files in the sidebar, or run `rag ingest PATH`, then ask again.",
    },
    "rate_sources": {"ja": "✓✗ 出典は正しかった？", "en": "✓✗ Were the sources right?"},
    "source_right": {"ja": "正しい", "en": "right"},
    "source_wrong": {"ja": "違う", "en": "wrong"},
}


def t(key: str, lang: str = "en", **fmt: object) -> str:
    text = _STRINGS[key]["ja" if lang == "ja" else "en"]
    return text.format(**fmt) if fmt else text


def both(ja: str, en: str) -> str:
    """A bilingual label, Japanese first: `検索件数 k / Results`."""
    return f"{ja} / {en}"
