"""Generate the non-UTF-8 and PDF files of the bundled document corpus.

Run from the repository root:

    .venv/bin/python scripts/make_corpus_pdf.py

The output is deterministic (PDFs are built with reportlab's ``invariant=1``,
which fixes the creation date and document ID), so re-running the script does
not change any bytes. The generated files are committed in ``docs_corpus/``;
re-run the script only after editing the texts below.

Corpus notes
============

All documents in ``docs_corpus/`` were written for this project (original
prose, not copied from elsewhere) and may be redistributed with it under the
project's licence. Paths are relative to ``docs_corpus/``.

Japanese (ja/)
  01_embedding_toha.md            Markdown, UTF-8   what an embedding is
  02_token_to_token_id.md         Markdown, UTF-8   tokens, token IDs, BPE, cl100k_base
  03_vector_to_jigen.md           Markdown, UTF-8   vectors, dimensions, L2 norm, storage
  04_jigen_sakugen.md             Markdown, UTF-8   PCA / t-SNE / UMAP
  05_rag_no_shikumi.md            Markdown, UTF-8   how RAG works, numbered sources
  06_chunk_bunkatsu.md            Markdown, UTF-8   chunking, overlap, 。！？ boundaries
  07_bm25_hybrid_kensaku.txt      text, Shift_JIS (cp932), no encoding declaration
                                  BM25, morphological analysis, n-grams, hybrid, RRF
  08_next_token_sentaku.txt       text, EUC-JP, no encoding declaration
                                  logits, softmax, temperature, top-p, logprobs
  09_hallucination_grounding.md   Markdown, UTF-8   hallucination and grounding
  10_torikomi_ingest.md           Markdown, UTF-8   rag ingest, idempotency, --prune, rag stats
  11_streamlit_app.html           HTML, UTF-8       Streamlit chat, sidebar, upload
  12_debug_panel.html             HTML, UTF-8       the "show me the embedding" panel
  13_settei_kankyo_hensu.txt      text, UTF-8       environment variables and .env
  14_chushutsu_mode_llm_mode.md   Markdown, UTF-8   extractive mode vs LLM mode
  15_chroma_vector_db.pdf         PDF (Japanese, CID font HeiseiKakuGo-W5), generated here
                                  Chroma collections, records, filters, clients

English (en/)
  cosine_dot_euclidean.md         Markdown          cosine vs dot vs L2, Chroma distances
  hnsw_approximate_search.html    HTML              ANN search, HNSW, M / ef parameters
  multilingual_embeddings.md      Markdown          one space for Japanese and English
  mmr_diversity.md                Markdown          maximal marginal relevance
  interpreting_similarity_scores.md Markdown        reading scores, choosing a threshold
  rag_map_command.md              Markdown          rag map --method pca|tsne|umap
  rag_eval_command.md             Markdown          rag eval, hit rate, MRR
  troubleshooting_rag_doctor.txt  text, UTF-8       rag doctor and common problems
  cli_search_ask_embed.pdf        PDF (English), generated here
                                  rag search -k, rag ask, rag embed, shell quoting

Encodings: every file is UTF-8 except the two legacy .txt files above. The
Shift_JIS file is not valid UTF-8 or EUC-JP; the EUC-JP file is not valid
UTF-8 or cp932, so a loader that tries utf-8, cp932, euc_jp in turn (or a
detector such as charset_normalizer, which reports the compatible superset
"euc_jis_2004" for the EUC-JP file) decodes both correctly. The English PDF
uses Helvetica/Courier and falls back to the CID font for its one command line
that contains Japanese. Text in both PDFs is verified with pypdf on every run.

qa.jsonl (not ingested: unsupported extension) holds 70 evaluation questions
(40 Japanese, 30 English, of which 5 are English questions answered by a
Japanese document): one JSON object per line with "question", "source" (path
relative to docs_corpus/, POSIX) and "lang" ("ja" or "en", the language of the
question). Every document is the source of at least two questions, and each
question is meant to be answerable from its source document only.

Markers for loader tests: every HTML file has a <script> and a <style> block
whose text contains a marker beginning with "xqz-script-" or "xqz-style-"
(for example "xqz-script-en-hnsw"). None of these strings, nor anything else
inside <script>/<style>, answers any question; if a marker shows up in an
ingested chunk, the HTML loader failed to strip the block. The marker word
"xqz-reading-time" in hnsw_approximate_search.html is an element id only.
"""

from __future__ import annotations

import sys
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "docs_corpus"

# ---------------------------------------------------------------------------
# ja/07_bm25_hybrid_kensaku.txt -- written as Shift_JIS (cp932)
# ---------------------------------------------------------------------------
SJIS_TEXT = """BM25とキーワード検索、そしてハイブリッド検索

埋め込みによるベクトル検索は言い換えに強い一方、型番、エラーコード、人名、社内用語のように「その文字列そのもの」が大事な検索は苦手です。そうした場面で今も広く使われているのが、キーワードの一致にもとづく検索と、その代表的な採点方式である BM25 です。

■ BM25 の考え方

BM25 は、1990年代に Robertson らが情報検索システム Okapi の研究の中で作った採点式です。質問に含まれる語ごとに点数を計算して合計します。一つの語の点数は、次の三つの要素で決まります。

1. 語の出現回数（TF）：文書の中にその語が多く出てくるほど点が上がります。ただし、回数が増えるほど伸びが鈍くなり、やがて頭打ちになります。どのくらいで頭打ちになるかを決めるのがパラメータ k1 で、1.2 から 2.0 程度がよく使われます。
2. 語の珍しさ（IDF）：多くの文書に出てくる「です」「する」のような語は点が低く、少数の文書にしか出てこない語ほど点が高くなります。
3. 文書の長さの補正：長い文書は、それだけで多くの語を含むので有利になりがちです。パラメータ b（よく使われる値は 0.75）で、長い文書の点を割り引く度合いを調整します。b を 0 にすると長さの補正をしなくなります。

BM25 は学習を必要とせず、計算も速く、なぜその文書が選ばれたのかを「どの語が一致したか」で説明できるのが長所です。

■ 日本語ではなぜ工夫が必要か

英語は単語の間に空白があるので、空白で区切るだけでおおよその単語に分けられます。しかし日本語は単語の間に空白を入れないため、同じ方法を使うと一文全体が一つの「単語」として扱われ、ほとんど一致しなくなります。そこで、次のどちらかの方法で文章を語に分けます。

(1) 形態素解析
MeCab、Sudachi、Janome などの形態素解析器は、辞書と統計的なモデルを使って文を単語に分けます。たとえば「東京都に住む」は「東京 / 都 / に / 住む」のように分かれます。意味のある単位で区切れるので索引が小さく精度も高くなりますが、辞書にない新語や専門用語はうまく分けられないことがあります。Sudachi には短い単位から長い単位まで、A・B・C の三つの分割モードがあります。

(2) 文字 n-gram
辞書を使わず、文字を n 個ずつずらしながら切り出す方法です。2文字ずつ（bigram）なら「東京都」は「東京」「京都」に分かれます。未知語にも強く実装も簡単ですが、この例のように「京都」で検索すると「東京都」を含む文書まで一致してしまうといった誤った一致が起きます。また、切り出す断片の数が多いため索引が大きくなります。

■ ハイブリッド検索

ベクトル検索と BM25 は得意なことが逆なので、両方を実行して結果を合わせると、どちらか一方だけよりも取りこぼしが減ることがよくあります。これをハイブリッド検索と呼びます。

ただし、二つの検索の点数は単位も範囲もまったく違います。コサイン類似度はおおむね -1 から 1 の範囲ですが、BM25 の点数には上限がなく、質問の語数によっても変わります。そのまま足し合わせると、一方の点数に引きずられてしまいます。

■ 順位融合（Reciprocal Rank Fusion）

そこでよく使われるのが、点数ではなく順位だけを使って統合する RRF（Reciprocal Rank Fusion、逆順位融合）です。2009年に Cormack らが提案しました。各検索での順位を r として、文書ごとに 1 / (k + r) を計算し、すべての検索について合計します。定数 k には 60 がよく使われます。

例：ある文書がベクトル検索で1位、BM25 で3位だった場合
  1 / (60 + 1) + 1 / (60 + 3) = 0.0164 + 0.0159 = 約 0.0323
一方の検索にしか出てこない文書は、出てこなかった側の項が 0 になるので、両方で上位に入った文書が自然と上に来ます。k を大きくすると順位の差が点数に与える影響が小さくなり、上位と下位の差がなだらかになります。

■ このアプリでの使い分け

サイドバーの検索方式で「vector」「bm25」「hybrid」を切り替えられます。型番や固有名詞を探すときは bm25、言い換えや英語と日本語をまたぐ検索では vector、迷ったら hybrid を試すのがおすすめです。BM25 は文字の一致を見るので、日本語の質問で英語の文書を見つけることはできません。
"""

# ---------------------------------------------------------------------------
# ja/08_next_token_sentaku.txt -- written as EUC-JP
# ---------------------------------------------------------------------------
EUCJP_TEXT = """言語モデルは次のトークンをどう選ぶのか

ChatGPT のような大規模言語モデル（LLM）は、文章を一度にまとめて書いているわけではありません。それまでの文章を読んで「次に来るトークン」を一つ選び、それを末尾に付け足して、また次の一つを選ぶ、という作業を繰り返しています。このように一つずつ順番に生成する方式を自己回帰型と呼びます。

■ ロジット

モデルは次のトークンを選ぶたびに、語彙に含まれるすべてのトークンについて、一つずつ「ロジット」と呼ばれる数値を出力します。ロジットは確率ではなく、上限も下限もない生の点数で、大きいほどそのトークンが次に来やすいことを表します。

■ ソフトマックスで確率に変える

ロジットを確率に変換するのがソフトマックス関数です。各ロジットを指数関数 exp にかけ、その合計で割ります。こうすると、すべての値が 0 と 1 の間に収まり、合計がちょうど 1 になります。

例：三つの候補のロジットが 2.0、1.0、0.1 のとき
  確率はおよそ 0.659、0.242、0.099 になります。

■ 温度（temperature）

温度 T は、ソフトマックスにかける前にロジットを T で割る操作です。

  T = 1   ：モデルが出した分布そのもの
  T < 1   ：差が強調され、上位の候補に確率が集中する
  T > 1   ：差がならされ、下位の候補も選ばれやすくなる

上の例で T = 0.5 にすると確率は 0.864、0.117、0.019 に、T = 2 にすると 0.502、0.304、0.194 になります。T = 0 は割り算ができないため、多くの実装では「常に確率最大のトークンを選ぶ」貪欲法として扱います。ただし温度を 0 にしても、計算機の並列処理の影響などで、出力が毎回完全に同じになるとは限りません。

■ top-p（核サンプリング）と top-k

確率の低い候補まで抽選の対象にすると、ときどき突拍子もない語が選ばれます。これを防ぐのが候補の絞り込みです。

  top-k：確率の高い順に k 個だけを候補に残す
  top-p：確率の高い順に足していき、合計が p（たとえば 0.9）に達するまでの候補だけを残す

top-p は核サンプリング（nucleus sampling）とも呼ばれます。分布が一つの候補に集中しているときは候補が少なく、迷っているときは候補が多くなるので、状況に応じて候補数が自動的に変わるのが特徴です。残った候補の確率は合計が 1 になるように割り直してから抽選します。

■ logprobs（対数確率）

API によっては、選ばれたトークンの確率を自然対数で表した値（logprob）を返せます。OpenAI の Chat Completions API では logprobs を有効にし、top_logprobs に数を指定すると、各位置の上位の候補（最大20個）とその対数確率も受け取れます。

対数確率から確率に戻すには exp を計算します。

  logprob = -0.1  → 確率 約 90%
  logprob = -0.69 → 確率 約 50%
  logprob = -2.3  → 確率 約 10%

0 に近いほどモデルが迷わずに選んだトークンで、大きな負の値はモデル自身も自信がなかったことを示します。ただし確率が高いことは、その内容が事実として正しいことを保証しません。

このアプリでは、LLM が logprobs を返した場合に限り、回答の各トークンについて次の候補とその確率を表示できます。抽出モード（LLM を使わない既定の動作）ではトークンを生成しないので、この表示はありません。
"""

# ---------------------------------------------------------------------------
# PDF sources. Minimal markup: "# " title, "## " heading, "$ " command line,
# "- " bullet, "1. " numbered item, anything else is a paragraph.
# ---------------------------------------------------------------------------
EN_PDF_TEXT = """# Asking from the command line: rag search, rag ask and rag embed
Everything the browser interface does with a question can also be done from a terminal. Three commands cover it. rag search shows what retrieval finds, rag ask produces an answer with citations, and rag embed shows how a piece of text looks to the embedding model. They are convenient over SSH, in shell scripts, and whenever you want results you can paste into a bug report. All three use the index in the current data directory and the embedding provider from your settings, so run them from the same folder, with the same environment, as the ingest step.
## rag search: retrieval only
$ rag search "How does HNSW trade speed for recall?" -k 5
rag search embeds the query, looks up the nearest chunks and prints them in ranked order, without writing an answer. For every hit you see its similarity score, the file it came from, and an excerpt of the chunk text. The -k option sets how many hits to show. A small k such as 3 is enough to check whether the right document comes first; a larger k such as 20 shows how the scores fall off and which documents compete for the same question.
This is the most useful command when an answer looks wrong. If the chunk that contains the answer is not among the hits, no answer step can fix it, and the problem lies in retrieval: chunking, the wording of the question, the retrieval mode, or the embedding model. If the right chunk is there, look at the answer step instead.
Rephrasing is cheap, so try several versions of a question and compare the hit lists. Adding a word or two of context, or asking in the language of the document you expect, often changes the ranking more than any setting.
## rag ask: the full pipeline
$ rag ask "What is the difference between extractive mode and LLM mode?"
rag ask runs retrieval and then produces an answer in the current answer mode, extractive or LLM, exactly as the chat in the browser does. The answer carries numbered citations such as [1] and [2], and the numbered list of sources is printed after it, so every citation can be traced to a file and a chunk. Because the output is plain text, it is easy to save answers to a file and compare them before and after a change to the documents or settings.
When rag ask gives a disappointing answer, run rag search with exactly the same question next. Seeing the retrieved chunks side by side with the answer is the fastest way to tell a retrieval failure from a generation failure.
## rag embed: look at the vector
$ rag embed "埋め込みは意味を座標に変える"
rag embed does not touch the index at all. It takes one piece of text and shows what the embedding side of the system sees: the tokens the text was split into, with their token IDs and the token count, the dimension of the resulting vector, its length (L2 norm), and the first few values of the vector.
Typical uses:
- Compare token counts. Embedding a Japanese sentence and its English translation shows directly how many more tokens the Japanese version needs, which matters for chunk sizes and API cost.
- Confirm which model is active. A 384-dimensional vector means the offline default, multilingual-e5-small, is in use; 512 dimensions means the offline Universal Sentence Encoder (RAG_LOCAL_MODEL=use); 1536 dimensions means OpenAI text-embedding-3-small. This is a quick check after changing RAG_EMBEDDING_PROVIDER.
- Check normalisation. All these models return unit-length vectors, so the norm should print as 1.0, give or take rounding. A different value suggests a misconfigured or unexpected model.
## Quoting in the shell
Put the query in quotes whenever it contains spaces; otherwise the shell splits it into several arguments. Japanese text without spaces works without quotes, but quoting it anyway is a good habit. In bash and zsh, an exclamation mark inside double quotes can trigger history expansion, so a query such as "Why is this slow!" may fail with "event not found". Use single quotes for such queries, or leave out the exclamation mark. The full-width exclamation mark used in Japanese text is an ordinary character and causes no problem.
## A short debugging session
Suppose rag ask answers a question about the --prune option with sentences about rag stats. The steps below usually locate the problem within a minute.
1. Run rag search with the same question and -k 10. Is the chunk about --prune in the list, and at what rank?
2. If it is missing, try a rephrased question and a keyword-style query such as "prune deleted files". If only the keyword query finds it, hybrid retrieval will probably help.
3. If it is present but ranked low, compare its score with the hits above it. Near-identical scores mean the documents overlap in topic; a clear gap means the question is closer to the other documents than intended.
4. Use rag embed on the question and on a sentence from the expected chunk to see how they are tokenised, then compare the two texts in the debug panel of the Streamlit app.
"""

JA_PDF_TEXT = """# ベクトルデータベース Chroma の基礎
このアプリは、埋め込みベクトルの保存と検索に Chroma（クロマ）を使っています。Chroma はオープンソースのベクトルデータベースで、Python から数行で使い始められる手軽さが特徴です。ここでは、アプリの裏側で Chroma がどのようにデータを持っているのかを説明します。
## コレクションとレコード
Chroma のデータは「コレクション」という名前付きの入れ物に入ります。関係データベースでいう表（テーブル）に近いものです。コレクションに入る一件一件のレコードは、次の四つの要素でできています。
- ID：レコードを一意に識別する文字列
- 埋め込み：ベクトル（数値の配列）
- ドキュメント：元になったチャンクの本文
- メタデータ：出典のファイル名やチャンクの番号など、キーと値の組
メタデータの値には、文字列・整数・小数・真偽値のような単純な値を使います。辞書や入れ子の構造はそのままでは保存できないので、必要なら文字列に直して入れます。
## 追加と更新
レコードを入れる方法には add と upsert があります。add は新しいレコードを追加する操作です。upsert は、同じ ID のレコードがすでにあれば内容を置き換え、なければ追加します。ファイル名とチャンクの番号のように、同じ内容からいつも同じ ID が作られる決め方にしておくと、upsert で何度書き込んでもレコードが重複しません。
## 検索とフィルター
検索では、質問のベクトルと、返してほしい件数（n_results）を渡します。結果として、近い順に並んだ ID、距離、本文、メタデータが返ってきます。Chroma が返すのは類似度ではなく距離なので、値が小さいほど近いことを意味します。
検索の対象を絞り込むこともできます。where にメタデータの条件を書くと、条件に合うレコードだけが検索の対象になります。たとえば {"source": "ja/03_vector_to_jigen.md"} と書けばその文書だけを、$in 演算子を使えば複数の文書を対象にできます。$gt や $lt による大小の比較や、$and と $or による条件の組み合わせも使えます。本文に特定の文字列を含むかどうかで絞り込みたいときは、where_document に $contains を使います。
## 三つの動かし方
- メモリー上だけで動かす方法：プログラムを終了するとデータは消えます。試験用です。
- ディスクに保存する方法（PersistentClient）：指定したフォルダにデータを保存し、次に起動したときもそのまま使えます。このアプリは通常この方法で、保存先は RAG_DATA_DIR の中です。
- サーバーに接続する方法（HttpClient）：別に起動した Chroma サーバーにネットワーク経由でつなぎます。複数のプログラムから同じデータを共有できます。
## 後から変えられない設定
コレクションの距離の種類（l2、ip、cosine）は、コレクションを作るときに決まり、後から変更できません。距離の種類を変えたい場合は、新しいコレクションを作ってデータを入れ直します。同じように、一つのコレクションに入れるベクトルはすべて同じ次元数でなければなりません。最初に入れたベクトルの次元数がそのコレクションの次元数になり、違う次元数のベクトルを入れようとするとエラーになります。
"""

JA_FONT = "HeiseiKakuGo-W5"


def _styles(japanese: bool):
    from reportlab.lib.enums import TA_LEFT
    from reportlab.lib.styles import ParagraphStyle

    body_font = JA_FONT if japanese else "Helvetica"
    bold_font = JA_FONT if japanese else "Helvetica-Bold"
    wrap = "CJK" if japanese else None
    body = ParagraphStyle(
        "body", fontName=body_font, fontSize=10.5, leading=16 if japanese else 14.5,
        spaceAfter=7, alignment=TA_LEFT, wordWrap=wrap,
    )
    return {
        "title": ParagraphStyle("title", parent=body, fontName=bold_font, fontSize=17,
                                leading=23, spaceAfter=14),
        "h2": ParagraphStyle("h2", parent=body, fontName=bold_font, fontSize=13,
                             leading=18, spaceBefore=10, spaceAfter=6),
        "body": body,
        "item": ParagraphStyle("item", parent=body, leftIndent=14, spaceAfter=4),
        "code": ParagraphStyle("code", parent=body, fontName=JA_FONT if japanese else "Courier",
                               fontSize=9.5, leading=13, leftIndent=14, spaceBefore=2,
                               spaceAfter=8, wordWrap=wrap),
    }


def _blocks(text: str, japanese: bool) -> list[tuple[str, str]]:
    """Split the minimal markup into (style name, plain text as rendered) pairs."""
    blocks = []
    for raw in text.strip().splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("# "):
            blocks.append(("title", line[2:]))
        elif line.startswith("## "):
            blocks.append(("h2", line[3:]))
        elif line.startswith("$ "):
            blocks.append(("code", line))
        elif line.startswith("- "):
            blocks.append(("item", ("・" if japanese else "- ") + line[2:]))
        elif line[:1].isdigit() and line[1:3] == ". ":
            blocks.append(("item", line))
        else:
            blocks.append(("body", line))
    return blocks


def _flowables(text: str, japanese: bool):
    from reportlab.platypus import Paragraph

    st = _styles(japanese)
    blocks = _blocks(text, japanese)
    title = next((t for kind, t in blocks if kind == "title"), None)
    out = []
    for kind, t in blocks:
        style = st[kind]
        if not japanese and not t.isascii():
            # Latin fonts have no Japanese glyphs: fall back to the CID font.
            from reportlab.lib.styles import ParagraphStyle

            style = ParagraphStyle(kind + "-cjk", parent=style, fontName=JA_FONT, wordWrap="CJK")
        out.append(Paragraph(escape(t), style))
    return title, out


def build_pdf(path: Path, text: str, japanese: bool) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import SimpleDocTemplate

    pdfmetrics.registerFont(UnicodeCIDFont(JA_FONT))
    title, story = _flowables(text, japanese)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = SimpleDocTemplate(
        str(path), pagesize=A4,
        leftMargin=22 * mm, rightMargin=22 * mm, topMargin=20 * mm, bottomMargin=20 * mm,
        title=title or "", author="rag project", subject="bundled corpus",
        creator="scripts/make_corpus_pdf.py", invariant=1,
    )
    doc.build(story)


def _squash(s: str) -> str:
    return "".join(s.split())


def verify() -> list[str]:
    """Return a list of problems with the generated files (empty when all is well)."""
    problems: list[str] = []
    for rel, enc, text in (
        ("ja/07_bm25_hybrid_kensaku.txt", "cp932", SJIS_TEXT),
        ("ja/08_next_token_sentaku.txt", "euc_jp", EUCJP_TEXT),
    ):
        data = (CORPUS / rel).read_bytes()
        if data.decode(enc) != text:
            problems.append(f"{rel}: does not round-trip through {enc}")
        try:
            data.decode("utf-8")
            problems.append(f"{rel}: unexpectedly valid UTF-8")
        except UnicodeDecodeError:
            pass
    try:
        from pypdf import PdfReader
    except ImportError:  # pragma: no cover - pypdf is a project dependency
        problems.append("pypdf not installed; PDFs not verified")
        return problems
    for rel, text in (
        ("en/cli_search_ask_embed.pdf", EN_PDF_TEXT),
        ("ja/15_chroma_vector_db.pdf", JA_PDF_TEXT),
    ):
        reader = PdfReader(str(CORPUS / rel))
        extracted = "".join(page.extract_text() or "" for page in reader.pages)
        # Compare ignoring whitespace, which line wrapping changes.
        expected = "".join(t for _, t in _blocks(text, japanese=rel.startswith("ja/")))
        if _squash(extracted) != _squash(expected):
            problems.append(f"{rel}: extracted text differs from the source text")
        if not 1 <= len(reader.pages) <= 3:
            problems.append(f"{rel}: {len(reader.pages)} pages, expected 1-3")
    return problems


def main() -> int:
    (CORPUS / "ja").mkdir(parents=True, exist_ok=True)
    (CORPUS / "en").mkdir(parents=True, exist_ok=True)
    (CORPUS / "ja/07_bm25_hybrid_kensaku.txt").write_bytes(SJIS_TEXT.encode("cp932"))
    (CORPUS / "ja/08_next_token_sentaku.txt").write_bytes(EUCJP_TEXT.encode("euc_jp"))
    build_pdf(CORPUS / "en/cli_search_ask_embed.pdf", EN_PDF_TEXT, japanese=False)
    build_pdf(CORPUS / "ja/15_chroma_vector_db.pdf", JA_PDF_TEXT, japanese=True)
    problems = verify()
    for p in problems:
        print("PROBLEM:", p, file=sys.stderr)
    if not problems:
        print("corpus files written and verified")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
