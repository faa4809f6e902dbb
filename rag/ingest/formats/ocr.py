"""OCR for scanned PDF pages (no text layer) with the Tesseract binary, Japanese and English models.

Used only when `tesseract` is on PATH with its `jpn` model; otherwise the page is reported as
skipped with the fix (`apt-get install tesseract-ocr tesseract-ocr-jpn`) and `rag doctor` says so.
The binary is called directly (no Python wrapper needed): each image of the page is written to a
temporary PNG and read back as text. Tesseract puts spaces between Japanese characters; those are
removed, spaces between English words are kept.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LANGUAGES = "jpn+eng"
INSTALL_FIX = "install Tesseract to OCR it: apt-get install tesseract-ocr tesseract-ocr-jpn"
PAGE_TIMEOUT_S = 120
_CJK = r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]"
_CJK_GAP = re.compile(rf"(?<={_CJK})[ \t]+(?={_CJK})")


@dataclass(frozen=True)
class OcrStatus:
    available: bool
    binary: str | None
    languages: tuple[str, ...]
    detail: str
    """What applies, in a sentence: which languages OCR uses, or what to install."""


@functools.cache
def status() -> OcrStatus:
    """Whether scanned pages can be read here (looked up once per process)."""
    binary = shutil.which("tesseract")
    if binary is None:
        return OcrStatus(False, None, (), f"tesseract not found: scanned PDF pages are skipped; {INSTALL_FIX}")
    try:
        out = subprocess.run([binary, "--list-langs"], capture_output=True, text=True, timeout=30)
        langs = tuple(sorted(line.strip() for line in out.stdout.splitlines()[1:] if line.strip()))
    except (OSError, subprocess.SubprocessError) as exc:
        return OcrStatus(False, binary, (), f"tesseract at {binary} does not run ({exc}); {INSTALL_FIX}")
    missing = [lang for lang in LANGUAGES.split("+") if lang not in langs]
    if missing:
        return OcrStatus(False, binary, langs,
                         f"tesseract lacks the {'+'.join(missing)} model: scanned PDF pages are "
                         f"skipped; {INSTALL_FIX}")
    return OcrStatus(True, binary, langs, f"scanned PDF pages are OCRed with tesseract ({LANGUAGES})")


def ocr_page(page: Any) -> str:
    """The text of a pypdf page's images, read by Tesseract; empty when it has no image."""
    found = status()
    if not found.available or found.binary is None:
        return ""
    try:
        images = list(page.images)
    except Exception:  # pypdf raises many types on a broken image stream: nothing to read then
        return ""
    texts = []
    with tempfile.TemporaryDirectory(prefix="rag-ocr-") as tmp:
        for i, image in enumerate(images):
            target = Path(tmp) / f"page-{i}.png"
            try:
                image.image.save(target)
            except (OSError, ValueError, AttributeError):
                continue  # an image format Pillow cannot decode: nothing to read from it
            texts.append(_tesseract(found.binary, target))
    return "\n".join(t for t in texts if t.strip())


def _tesseract(binary: str, image: Path) -> str:
    try:
        out = subprocess.run(
            [binary, str(image), "stdout", "-l", LANGUAGES], capture_output=True, text=True,
            timeout=PAGE_TIMEOUT_S,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return _CJK_GAP.sub("", out.stdout).strip()
