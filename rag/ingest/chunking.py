"""Token-aware, Japanese-aware splitting of Documents into chunks.

Length is measured in cl100k tokens, the unit embedding models and their limits use. Splits prefer
paragraphs, then lines, then sentence ends in both scripts (。！？ and ". "), then clause marks,
and keep the punctuation with the sentence it ends. Loading and storage live elsewhere.
"""

from __future__ import annotations

from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag.tokens import count_tokens
from rag.visible import has_visible_text

SEPARATORS = [
    "\n\n",
    "\n",
    "。",
    "！",
    "？",
    "．",
    ". ",
    "! ",
    "? ",
    "; ",
    "、",
    "，",
    ", ",
    " ",
    "",
]


def make_splitter(chunk_size: int, chunk_overlap: int) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        separators=SEPARATORS,
        keep_separator="end",
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        length_function=count_tokens,
        strip_whitespace=True,
    )


def split_documents(docs: list[Document], chunk_size: int, chunk_overlap: int) -> list[Document]:
    """Chunks of one file, numbered in order, with offsets into the file and token counts.

    `start` is the chunk's character offset in the decoded file (or PDF page), so a citation can
    point at the exact place; `chunk` numbers the chunks of the whole file from 0. A piece with no
    visible character (zero-width spaces, joiners, BOMs) is dropped: it would match every query.
    """
    splitter = make_splitter(chunk_size, chunk_overlap)
    chunks: list[Document] = []
    for doc in docs:
        base = int(doc.metadata.get("start", 0))
        cursor = 0
        for text in splitter.split_text(doc.page_content):
            if not has_visible_text(text):  # a run of zero-width spaces is not a chunk
                continue
            offset = _locate(doc.page_content, text, cursor)
            cursor = offset + 1
            meta = dict(doc.metadata)
            meta.update(start=base + offset, tokens=count_tokens(text), chunk=len(chunks))
            chunks.append(Document(page_content=text, metadata=meta))
    return chunks


def _locate(text: str, chunk: str, cursor: int) -> int:
    """Where a chunk starts in its text, searching forward from the previous chunk.

    The splitter may normalise whitespace where it joins pieces, so when the whole chunk is not
    found verbatim its first line (or first 32 characters) anchors it.
    """
    for probe in (chunk, chunk.split("\n", 1)[0][:64], chunk[:32]):
        found = text.find(probe, cursor)
        if probe and found >= 0:
            return found
    return cursor
