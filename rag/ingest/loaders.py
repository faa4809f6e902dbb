"""Files to LangChain Documents: discovery, encoding detection, and one reader per format.

Every failure is a `LoadError` whose message a person understands ("binary file", "encrypted PDF
(password required)"), so the caller can name the file and carry on with the others. Chunking and
storage are not done here.
"""

from __future__ import annotations

import codecs
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from langchain_core.documents import Document

from rag.errors import LoadError
from rag.ingest.formats import READERS, reader_for
from rag.ingest.paths import inside, path_key, readable, real
from rag.visible import has_visible_text

SUPPORTED_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".html", ".htm", ".pdf", *READERS})
_CANDIDATE_ENCODINGS = ("utf-8", "cp932", "euc_jp")
_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff\u3000-\u303f\uff01-\uff5e]")
_HALFWIDTH_KANA = re.compile(r"[\uff61-\uff9f]")
_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


@dataclass(frozen=True)
class FoundFile:
    """A file to ingest and the root it was found under, both as real paths (`rag.ingest.paths`).

    `key` is the file's one identity in the store and the manifest; `source` is what results
    show: its path relative to the root, readable even when the name is not UTF-8.
    """

    path: Path
    root: Path

    @property
    def key(self) -> str:
        return path_key(self.path)

    @property
    def source(self) -> str:
        if self.path == self.root:
            return readable(self.path.name)
        return readable(self.path.relative_to(self.root).as_posix())


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str

    @property
    def shown(self) -> str:
        return readable(self.path)


def discover(roots: list[Path]) -> Iterator[FoundFile | Skipped]:
    """Walk the given files and folders: supported files in a stable order, others as `Skipped`.

    Every path is resolved to its real path first, so a folder named two ways or through a
    symlink yields the same files. Hidden files and folders are skipped; symlinks are followed
    while they stay inside the root (a loop is visited once), and one pointing outside it is
    skipped with the reason; a file reached twice is yielded once.
    """
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[Path] = set()
    for given in roots:
        root = real(given)
        if not root.exists():
            yield Skipped(given.absolute(), "no such file or folder")
            continue
        if root.is_file():
            yield from _one_file(root, root, seen_files)
            continue
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            here = real(Path(dirpath))
            if not inside(here, root):
                dirnames[:] = []
                yield Skipped(Path(dirpath), _OUTSIDE.format(kind="folder", root=readable(root)))
                continue
            stat = os.stat(dirpath)
            if (stat.st_dev, stat.st_ino) in seen_dirs:
                dirnames[:] = []
                continue
            seen_dirs.add((stat.st_dev, stat.st_ino))
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if not name.startswith("."):
                    yield from _one_file(Path(dirpath) / name, root, seen_files)


_OUTSIDE = ("symlink to a {kind} outside {root}, not followed (ingest its target directly "
            "if you want it)")


def _one_file(path: Path, root: Path, seen: set[Path]) -> Iterator[FoundFile | Skipped]:
    target = real(path)
    if not inside(target, root):
        yield Skipped(path, _OUTSIDE.format(kind="file", root=readable(root)))
        return
    if target in seen:
        return
    seen.add(target)
    if target.suffix.lower() not in SUPPORTED_SUFFIXES:
        yield Skipped(path, f"unsupported type {target.suffix or '(no extension)'}")
    elif not target.is_file():
        yield Skipped(path, "not a regular file")
    else:
        yield FoundFile(target, root)


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode bytes of unknown encoding; return (text, encoding name).

    UTF-8 (with or without BOM), Shift_JIS/CP932 and EUC-JP are tried strictly and the decoding
    that yields the most Japanese characters wins: EUC-JP bytes also decode as CP932, but into
    half-width katakana, so counting real kana and kanji separates them. UTF-8 with a few broken
    bytes keeps its text; plausible Western text is read as CP1252/Latin-1; anything else falls to
    charset-normalizer, then Latin-1, after binary data has been ruled out.
    """
    if not data.strip():
        raise LoadError("empty file")
    if data.startswith(codecs.BOM_UTF8):
        return _checked(data[3:].decode("utf-8", errors="strict"), "utf-8-sig")
    for bom, name in ((codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return _checked(data.decode(name), name)
    if b"\x00" in data[:8192]:
        raise LoadError("binary file (contains NUL bytes), not text")
    try:
        return _checked(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    damaged = data.decode("utf-8", errors="replace")
    bad = damaged.count("\ufffd")
    good = sum(1 for ch in damaged if ord(ch) > 127) - bad
    if good >= 20 * bad:  # UTF-8 with a few broken bytes (a cut or corrupted file): keep the rest
        return _checked(damaged, "utf-8 (invalid bytes replaced)")
    best: tuple[float, str, str] | None = None
    for name in _CANDIDATE_ENCODINGS[1:]:
        try:
            text = data.decode(name)
        except UnicodeDecodeError:
            continue
        score = len(_JAPANESE.findall(text)) - 2 * len(_HALFWIDTH_KANA.findall(text))
        if best is None or score > best[0]:
            best = (score, text, name)
    if best is not None and best[0] > 0:
        return _checked(best[1], best[2])
    western = _western(data)
    if western is not None:
        return _checked(*western)
    from charset_normalizer import from_bytes

    guess = from_bytes(data).best()
    if guess is not None and guess.encoding:
        return _checked(str(guess), guess.encoding)
    return _checked(data.decode("latin-1"), "latin-1")


_WESTERN_PUNCTUATION = frozenset("’‘“”„–—…€£¥¢©®™°±·•«»¿¡§×÷\u00a0")


def _western(data: bytes) -> tuple[str, str] | None:
    """Latin-1/CP1252 text (café, naïve), which charset-normalizer misreads when it is short.

    Accepted only when every non-ASCII character is a Latin letter or common punctuation and
    accented letters are a minority of the letters, as in real Western text; mojibake of
    Cyrillic or Central European code pages fails one of the two and goes to charset-normalizer.
    """
    try:
        text, name = data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        text, name = data.decode("latin-1"), "latin-1"
    letters = accented = 0
    for ch in text:
        if ord(ch) < 128:
            letters += ch.isalpha()
        elif ch.isalpha() and "LATIN" in unicodedata.name(ch, ""):
            letters += 1
            accented += 1
        elif ch not in _WESTERN_PUNCTUATION:
            return None
    if letters == 0 or accented > 0.3 * letters:
        return None
    return text, name


def _checked(text: str, name: str) -> tuple[str, str]:
    """Refuse text that decoded but is mostly control characters: binary data in disguise."""
    sample = text[:4096]
    controls = sum(
        1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f\v"
    )
    if sample and controls / len(sample) > 0.05:
        raise LoadError("binary file (mostly control characters), not text")
    return text, name


def load(found: FoundFile, data: bytes) -> list[Document]:
    """Read one file's bytes into Documents with `source`, `path` and format metadata."""
    suffix = found.path.suffix.lower()
    office = reader_for(suffix)
    if office is not None:
        docs = office(data)
    elif suffix == ".pdf":
        docs = _load_pdf(data)
    else:
        text, enc = decode_text(data)
        if suffix in {".html", ".htm"}:
            docs = _load_html(text)
        elif suffix in {".md", ".markdown"}:
            docs = _load_markdown(text)
        else:
            docs = [Document(page_content=text, metadata={"start": 0})]
        for doc in docs:
            doc.metadata["encoding"] = enc
    docs = [d for d in docs if has_visible_text(d.page_content)]
    if not docs:
        raise LoadError("no visible text in the file (only whitespace or invisible characters)")
    for doc in docs:
        doc.metadata.update(source=found.source, path=found.key)
    return docs


def _load_markdown(text: str) -> list[Document]:
    """One Document per heading section, carrying the heading path ("Intro > Setup")."""
    docs: list[Document] = []
    trail: list[tuple[int, str]] = []
    starts = [(m.start(), len(m.group(1)), m.group(2).strip()) for m in _MD_HEADING.finditer(text)]
    if not starts or starts[0][0] > 0:
        starts.insert(0, (0, 0, ""))
    for i, (start, level, title) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        if level:
            trail = [t for t in trail if t[0] < level] + [(level, title)]
        heading = " > ".join(t[1] for t in trail)
        docs.append(Document(page_content=text[start:end], metadata={"start": start, "heading": heading}))
    return docs


_INLINE_TAGS = ["a", "abbr", "b", "bdi", "cite", "code", "data", "dfn", "em", "i", "kbd", "mark",
                "q", "s", "samp", "small", "span", "strong", "sub", "sup", "time", "u", "var"]


def _load_html(text: str) -> list[Document]:
    """Visible text only: scripts, styles and templates never reach the index."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "head", "svg"]):
        tag.decompose()
    # inline elements are part of their sentence: without this, `<em>usually</em>` or
    # `<code>make run</code>` became lines of their own (one-word lines in the sources, and
    # sentence breaks for the extractive answerer)
    for tag in soup(_INLINE_TAGS):
        tag.unwrap()
    soup.smooth()
    title_tag = BeautifulSoup(text, "html.parser").title
    title = title_tag.get_text(strip=True) if title_tag else ""
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    body = "\n".join(line for line in lines if line)
    return [Document(page_content=body, metadata={"start": 0, "heading": title})]


def _load_pdf(data: bytes) -> list[Document]:
    """One Document per page with text; encrypted and broken PDFs say so plainly.

    A page without a text layer is OCRed when Tesseract is installed (`rag.ingest.formats.ocr`);
    every page carries the page count, so the pages left without text can be named.
    """
    import io
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError("encrypted PDF (password required)")
        from rag.ingest.formats.ocr import ocr_page

        docs = []
        pages = len(reader.pages)
        for number, page in enumerate(reader.pages, start=1):
            text = page.extract_text() or ""
            meta: dict[str, object] = {"page": number, "pages": pages, "start": 0}
            if not has_visible_text(text) and (text := ocr_page(page)):
                meta["ocr"] = "tesseract"
            if has_visible_text(text):
                docs.append(Document(page_content=text, metadata=meta))
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise LoadError(f"corrupt or truncated PDF ({type(exc).__name__})") from None
    except Exception as exc:  # pypdf raises many internal types on hostile files
        if "decrypt" in str(exc).lower() or "crypt" in type(exc).__name__.lower():
            raise LoadError("encrypted PDF (needs a decryption library or password)") from None
        raise LoadError(f"unreadable PDF ({type(exc).__name__})") from None
    if not docs:
        from rag.ingest.formats import ocr

        found = ocr.status()
        if found.available:
            raise LoadError("PDF has no extractable text (scanned images?); OCR found none either")
        raise LoadError("PDF has no extractable text (scanned images?);", ocr.INSTALL_FIX)
    return docs
