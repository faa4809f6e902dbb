"""The formats people have: .docx, .pptx, .xlsx, .csv and scanned PDFs, each with Japanese text.

Files are written by the same libraries that read them (python-docx, python-pptx, openpyxl), so
they are real Office files; scanned pages are images of Japanese text rendered with Noto Sans CJK
and read back by the real Tesseract. Each format also gets a broken file, which must fail alone
with a reason while the rest of the folder is ingested.
"""

from __future__ import annotations

import functools
import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag import store
from rag.cli import main
from rag.config import get_settings
from rag.errors import LoadError
from rag.ingest import quality
from rag.ingest.formats import ocr
from rag.ingest.loaders import FoundFile, load
from rag.ingest.pipeline import Ingestor
from rag.retrieve.searcher import Searcher

DOCX_BODY = "埋め込みベクトルは文の意味を数値の並びで表します。"
SLIDE_NOTE = "発表者ノート：ここでコサイン類似度の式を説明する。"
SCAN_TEXT = "私は猫である"


def docx_bytes() -> bytes:
    from docx import Document

    doc = Document()
    doc.add_heading("埋め込みの基礎", level=1)
    doc.add_paragraph(DOCX_BODY)
    doc.add_heading("類似度", level=2)
    doc.add_paragraph("コサイン類似度は二つのベクトルの角度を比べます。")
    table = doc.add_table(rows=3, cols=2)
    for row, (a, b) in zip(table.rows, [("モデル", "次元"), ("USE", "512"), ("OpenAI", "1536")], strict=True):
        row.cells[0].text, row.cells[1].text = a, b
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def pptx_bytes() -> bytes:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    for title, body, note in [
        ("ベクトル検索", "近傍探索で似た文書を探します。", SLIDE_NOTE),
        ("HNSW", "階層グラフで高速に近似検索します。", ""),
    ]:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if note:
            slide.notes_slide.notes_text_frame.text = note
    slide = deck.slides.add_slide(deck.slide_layouts[5])
    slide.shapes.title.text = "比較表"
    table = slide.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(6), Inches(1)).table
    for (r, c), text in {(0, 0): "方式", (0, 1): "速度", (1, 0): "総当たり", (1, 1): "遅い"}.items():
        table.cell(r, c).text = text
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def xlsx_bytes() -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "社員"
    for row in [("氏名", "部署", "内線"), ("田中太郎", "営業部", 1234), ("鈴木花子", "開発部", 5678)]:
        sheet.append(row)
    other = book.create_sheet("料理")
    for row in [("料理", "説明"), ("寿司", "酢飯に魚介類を合わせた料理"), (None, None), ("天ぷら", "衣をつけて揚げる")]:
        other.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


CSV_SJIS = "商品名,価格,産地\n緑茶,800,静岡\n抹茶,1500,宇治\n".encode("cp932")


def loaded(name: str, data: bytes, tmp_path: Path):
    path = tmp_path / name
    path.write_bytes(data)
    return load(FoundFile(path, path), data)


def test_docx_paragraphs_headings_and_tables(tmp_path: Path) -> None:
    docs = loaded("基礎.docx", docx_bytes(), tmp_path)
    assert [d.metadata["heading"] for d in docs] == ["埋め込みの基礎", "埋め込みの基礎 > 類似度"]
    assert DOCX_BODY in docs[0].page_content
    assert "モデル: USE | 次元: 512" in docs[1].page_content  # table rows carry their header
    assert "モデル: OpenAI | 次元: 1536" in docs[1].page_content
    assert all(d.metadata["source"] == "基礎.docx" for d in docs)


def test_pptx_one_page_per_slide_with_notes_and_tables(tmp_path: Path) -> None:
    docs = loaded("deck.pptx", pptx_bytes(), tmp_path)
    assert [(d.metadata["page"], d.metadata["heading"]) for d in docs] == [
        (1, "ベクトル検索"), (2, "HNSW"), (3, "比較表")]
    assert all(d.metadata["pages"] == 3 for d in docs)
    assert "近傍探索で似た文書を探します。" in docs[0].page_content
    assert SLIDE_NOTE in docs[0].page_content and "Notes" in docs[0].page_content
    assert "Notes" not in docs[1].page_content
    assert "方式: 総当たり | 速度: 遅い" in docs[2].page_content


def test_xlsx_each_sheet_is_a_page_of_rows_with_header(tmp_path: Path) -> None:
    docs = loaded("名簿.xlsx", xlsx_bytes(), tmp_path)
    assert [(d.metadata["page"], d.metadata["heading"]) for d in docs] == [(1, "社員"), (2, "料理")]
    assert "氏名: 田中太郎 | 部署: 営業部 | 内線: 1234" in docs[0].page_content
    assert "料理: 天ぷら | 説明: 衣をつけて揚げる" in docs[1].page_content
    assert "None" not in docs[1].page_content  # the empty row is dropped, not printed


def test_csv_rows_with_header_in_shift_jis(tmp_path: Path) -> None:
    docs = loaded("お茶.csv", CSV_SJIS, tmp_path)
    assert docs[0].metadata["encoding"] == "cp932"
    assert docs[0].page_content.splitlines() == [
        "商品名 | 価格 | 産地", "商品名: 緑茶 | 価格: 800 | 産地: 静岡", "商品名: 抹茶 | 価格: 1500 | 産地: 宇治"]
    tsv = loaded("t.csv", "名前\t年齢\n猫\t3\n".encode(), tmp_path)
    assert "名前: 猫 | 年齢: 3" in tsv[0].page_content


BROKEN = {
    "broken.docx": (lambda: docx_bytes()[:400], "Word .docx"),
    "fake.docx": (lambda: b"just some text, not a zip", "Word .docx"),
    "broken.pptx": (lambda: pptx_bytes()[:600], "PowerPoint .pptx"),
    "broken.xlsx": (lambda: xlsx_bytes()[:500], "Excel .xlsx"),
    "legacy.xlsx": (lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "Excel .xlsx"),
    "binary.csv": (lambda: bytes(range(256)) * 8, "binary"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_office_files_fail_with_a_reason(name: str, tmp_path: Path) -> None:
    make, words = BROKEN[name]
    with pytest.raises(LoadError, match=words):
        loaded(name, make(), tmp_path)


def test_folder_of_formats_ingests_and_answers_japanese(tmp_path: Path, local_model, capsys) -> None:
    root = tmp_path / "office"
    root.mkdir()
    (root / "基礎.docx").write_bytes(docx_bytes())
    (root / "deck.pptx").write_bytes(pptx_bytes())
    (root / "名簿.xlsx").write_bytes(xlsx_bytes())
    (root / "お茶.csv").write_bytes(CSV_SJIS)
    for name, (make, _) in BROKEN.items():
        (root / name).write_bytes(make())
    code = main(["ingest", str(root), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 2
    assert data["files"]["read"] == 4
    assert {Path(f["path"]).name for f in data["files"]["failed"]} == set(BROKEN)
    searcher = Searcher(get_settings())
    assert searcher.search("抹茶の産地はどこ", k=1, mode="bm25").hits[0].source == "お茶.csv"
    hit = searcher.search("田中太郎の内線番号", k=1, mode="bm25").hits[0]
    assert (hit.source, hit.page) == ("名簿.xlsx", 1)
    hit = searcher.search("コサイン類似度の式の説明", k=1, mode="bm25").hits[0]
    assert (hit.source, hit.page) == ("deck.pptx", 1)
    meta = hit.metadata
    assert (meta["type"], meta["pages"]) == ("pptx", 3)


# --- scanned PDFs and garbled text -------------------------------------------------------------


@functools.cache
def cjk_font() -> str:
    out = subprocess.run(["fc-match", "-f", "%{file}", "Noto Sans CJK JP"], capture_output=True, text=True)
    if "CJK" not in out.stdout:
        pytest.fail("the OCR tests need fonts-noto-cjk (see .ci/run)")
    return out.stdout


def scanned_pdf(lines: list[str], *, text_first_page: str | None = None) -> bytes:
    """A PDF whose last page is only an image of `lines` (no text layer), like a scanner makes."""
    from PIL import Image, ImageDraw, ImageFont
    from pypdf import PdfReader, PdfWriter

    font = ImageFont.truetype(cjk_font(), 56, index=0)
    image = Image.new("L", (1240, 180 + 110 * len(lines)), 255)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((90, 90 + 110 * i), line, font=font, fill=0)
    scan = io.BytesIO()
    image.save(scan, format="PDF", resolution=150)
    writer = PdfWriter()
    if text_first_page is not None:
        from tests.test_hostile_files import text_pdf

        writer.append(PdfReader(io.BytesIO(text_pdf(text_first_page))))
    writer.append(PdfReader(io.BytesIO(scan.getvalue())))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture
def no_tesseract(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A machine without Tesseract: an empty PATH (the real lookup runs, nothing is faked)."""
    cjk_font()  # found while fc-match is still on PATH
    monkeypatch.setenv("PATH", "/nonexistent")
    ocr.status.cache_clear()
    yield
    ocr.status.cache_clear()


def test_scanned_pdf_is_ocred_in_japanese(tmp_path: Path) -> None:
    ocr.status.cache_clear()
    if not ocr.status().available:
        pytest.fail(f"OCR test needs Tesseract with jpn (see .ci/run): {ocr.status().detail}")
    docs = loaded("scan.pdf", scanned_pdf([SCAN_TEXT + "。", "名前はまだ無い。"]), tmp_path)
    assert len(docs) == 1 and docs[0].metadata["ocr"] == "tesseract"
    text = docs[0].page_content
    assert SCAN_TEXT in text and "名前" in text, text
    assert " " not in text.splitlines()[0], text  # Tesseract's spaces between kana/kanji removed


def test_scanned_pdf_without_tesseract_names_the_fix(tmp_path: Path, no_tesseract) -> None:
    assert not ocr.status().available
    with pytest.raises(LoadError, match="apt-get install tesseract-ocr tesseract-ocr-jpn"):
        loaded("scan.pdf", scanned_pdf([SCAN_TEXT]), tmp_path)


def test_page_without_text_layer_is_flagged_in_ingest_output(tmp_path: Path, local_model, capsys,
                                                             no_tesseract) -> None:
    path = tmp_path / "mixed.pdf"
    path.write_bytes(scanned_pdf([SCAN_TEXT], text_first_page="Cosine similarity compares vectors."))
    code = main(["ingest", str(path)])
    err = capsys.readouterr().err
    assert code == 0
    assert "garbled? " in err and "page 2: no text layer" in err and "tesseract-ocr-jpn" in err, err


def test_garbled_japanese_is_flagged_per_page_and_stored(tmp_path: Path, local_model, capsys) -> None:
    assert quality.text_flags("これは普通の日本語の文章です。") == []
    assert quality.text_flags("置き換え文字「�」の説明、部首⽇の説明 (cid:1)") == []  # one of each is meant
    assert "(cid:" in quality.text_flags("本文 (cid:1234)(cid:88)(cid:7) です")[0]
    assert "radical" in quality.text_flags("⽇本の⽂書を⾒る")[0]  # Kangxi radicals for 日, 文, 見
    assert "private-use" in quality.text_flags("\ue000\ue001\ue002の資料")[0]
    path = tmp_path / "bad.txt"
    path.write_bytes("⽇本の⽂書を⾒る。".encode() + b"\xff\xfe\xff" + "正しい日本語の文章が続きます。".encode() * 30)
    code = main(["ingest", str(path), "--json"])
    flagged = json.loads(capsys.readouterr().out)["files"]["flagged"]
    assert code == 0
    reasons = " ".join(f["reason"] for f in flagged)
    assert "radical" in reasons and "U+FFFD" in reasons, flagged
    coll = store.collection(get_settings(), Ingestor(get_settings()).info)
    metas = coll.get(include=["metadatas"])["metadatas"]
    assert all("radical" in m["garbled"] for m in metas)


def test_doctor_says_whether_scanned_pages_are_ocred(capsys, local_model, monkeypatch) -> None:
    ocr.status.cache_clear()
    main(["doctor", "--json"])
    check = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}["ocr"]
    assert check["ok"] and "OCRed with tesseract (jpn+eng)" in check["detail"], check
    monkeypatch.setenv("PATH", "/nonexistent")
    ocr.status.cache_clear()
    try:
        main(["doctor"])
        out = capsys.readouterr().out
    finally:
        ocr.status.cache_clear()
    assert "ocr: tesseract not found: scanned PDF pages are skipped; install Tesseract" in out, out
    assert "apt-get install tesseract-ocr tesseract-ocr-jpn" in out
