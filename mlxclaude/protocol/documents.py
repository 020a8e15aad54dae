"""PDF documents (Claude Code's Read tool on a .pdf sends one as a base64 `document` block) → the text a model
reads, page by page with page markers. Pure: bytes in, text out (pypdf)."""

from __future__ import annotations

import base64
import binascii
import io

from mlxclaude.protocol.errors import ApiError

MAX_PDF_BYTES = 32 * 1024 * 1024  # Anthropic's own request limit
PDF_MEDIA_TYPE = "application/pdf"


def pdf_text(data: str, *, where: str = "document") -> str:
    """Every page's text, each after a `[page N of M]` line; a 400 saying why for what cannot be read (a PDF is
    never passed on as silently empty)."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError.invalid_request(f"{where}: the PDF's data is not valid base64") from None
    if len(raw) > MAX_PDF_BYTES:
        raise ApiError.request_too_large(f"{where}: the PDF is larger than {MAX_PDF_BYTES // 2**20} MiB")
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ApiError.invalid_request(f"{where}: the PDF is encrypted; send a copy without a password")
        pages = [page.extract_text() or "" for page in reader.pages]
    except ApiError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise ApiError.invalid_request(f"{where}: the PDF cannot be read: {exc or type(exc).__name__}") from None
    if not pages:
        raise ApiError.invalid_request(f"{where}: the PDF has no pages")
    total = len(pages)
    text = "\n\n".join(f"[page {number} of {total}]\n{page.strip()}" for number, page in enumerate(pages, 1))
    if not any(page.strip() for page in pages):
        text += "\n\n[this PDF has no text layer: its pages are images (a scan?)]"
    return text
