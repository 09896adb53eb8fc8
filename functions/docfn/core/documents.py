"""Decoding request bytes into page images, with limits checked before any large allocation.

Supported: PNG (APNG: its first frame), JPEG (MPO: each picture a page), TIFF (multi-frame), WebP
(animated: its first frame) and PDF (rendered with pypdfium2). The type is sniffed from the bytes; a
declared Content-Type that disagrees with them is refused.

The pixel limit holds before any frame of any decoder is decoded: a canvas format's canvas is read
from its header before Pillow opens it (``image_headers``), every frame's size before it is
loaded, and a PDF page's size at the render DPI before it is rendered.
"""

from __future__ import annotations

import ctypes
import io
import re
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import BadInput, BadOptions, EncryptedPdf, PayloadTooLarge, UnsupportedMediaType
from .image_headers import canvas_size
from .text_layer import TextLayer, read_text_layer

# Pillow's own bomb check is a warning/exception at 2x its limit; ours is explicit and earlier.
Image.MAX_IMAGE_PIXELS = None

MEDIA_TYPES: dict[str, str] = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "tiff": "image/tiff",
    "webp": "image/webp",
    "pdf": "application/pdf",
}
_ALIASES = {"image/jpg": "image/jpeg", "image/tif": "image/tiff", "application/x-pdf": "application/pdf"}
# Declared types that say nothing about the bytes: sniff instead of trusting or refusing them.
UNINFORMATIVE_TYPES = {"", "application/octet-stream", "binary/octet-stream", "multipart/form-data"}
# Formats whose frames are composited onto one canvas: Pillow's seek to frame n decodes frames
# 0..n-1 at the canvas size, so the canvas is checked before any seek. A TIFF's or an MPO's seek
# reads the next frame's header only; each of their frames has its own size.
CANVAS_FORMATS = {"png", "webp"}


@dataclass(frozen=True)
class PageImage:
    """One page as an RGB uint8 array, with its 0-based index in the source document, and for a
    PDF page rendered with it asked for, the page's own text layer (None: not a PDF, or not asked)."""

    index: int
    image: np.ndarray
    text_layer: TextLayer | None = None

    @property
    def size(self) -> tuple[int, int]:
        return int(self.image.shape[1]), int(self.image.shape[0])


def sniff_format(data: bytes) -> str | None:
    """The format the bytes really are, from their magic numbers."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if b"%PDF-" in data[:1024]:
        return "pdf"
    return None


def check_format(data: bytes, declared: str | None) -> str:
    """Validate the body against the declared Content-Type and return the sniffed format."""
    if not data:
        raise BadInput("the request body is empty; send an image or PDF")
    declared_type = (declared or "").split(";")[0].strip().lower()
    declared_type = _ALIASES.get(declared_type, declared_type)
    if declared_type not in UNINFORMATIVE_TYPES and declared_type not in MEDIA_TYPES.values():
        raise UnsupportedMediaType(
            f"unsupported Content-Type {declared_type!r}; send one of {sorted(MEDIA_TYPES.values())}"
        )
    fmt = sniff_format(data)
    if fmt is None:
        what = "text" if _looks_like_text(data) else "unrecognised binary data"
        if data[:6] in (b"GIF87a", b"GIF89a"):
            what = "a GIF"  # named, so the caller knows to convert it; never handed to a decoder
        raise UnsupportedMediaType(
            f"the body is {what}, not a PNG, JPEG, TIFF, WebP or PDF"
            + (f" (declared {declared_type})" if declared_type not in UNINFORMATIVE_TYPES else "")
        )
    if declared_type not in UNINFORMATIVE_TYPES and MEDIA_TYPES[fmt] != declared_type:
        raise UnsupportedMediaType(f"Content-Type says {declared_type} but the body is {MEDIA_TYPES[fmt]}")
    return fmt


def _looks_like_text(data: bytes) -> bool:
    sample = data[:512]
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_page_ranges(spec: str | None) -> list[int] | None:
    """``"1-3,7"`` -> ``[0, 1, 2, 6]`` (0-based, sorted, unique). None means all pages."""
    if spec is None or not spec.strip():
        return None
    pages: set[int] = set()
    for part in spec.split(","):
        match = _RANGE.match(part)
        if not match:
            raise BadOptions(f"bad page range {part!r} in {spec!r}; use e.g. 1-3,7")
        first = int(match.group(1))
        last = int(match.group(2) or first)
        if first < 1 or last < first:
            raise BadOptions(f"bad page range {part!r}: pages are numbered from 1 and ranges ascend")
        if last - first > 100_000:
            raise BadOptions(f"page range {part!r} is too long")
        pages.update(range(first - 1, last))
    return sorted(pages)


# What Pillow's decoders raise on corrupt or hostile bytes (found by fuzzing: a TIFF without its
# dimension tags raises TypeError/KeyError, a broken JPEG IndexError): a bad input, never a 500.
DECODER_FAILURES = (
    UnidentifiedImageError,
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    TypeError,
    KeyError,
    IndexError,
    struct.error,
    ZeroDivisionError,
)


@dataclass(frozen=True)
class DecodeLimits:
    max_pixels: int
    max_pages: int
    pdf_dpi: int = 150


class Document:
    """A decoded-on-demand document: pages are rendered one at a time (bounded memory)."""

    def __init__(self, data: bytes, fmt: str, limits: DecodeLimits) -> None:
        self.data = data
        self.format = fmt
        self.limits = limits
        self._pdf = None
        self.page_count = self._count_pages()

    def _count_pages(self) -> int:
        if self.format == "pdf":
            import pypdfium2 as pdfium
            import pypdfium2.raw as pdfium_raw

            try:
                self._pdf = pdfium.PdfDocument(self.data)
            except pdfium.PdfiumError as exc:
                if exc.err_code == pdfium_raw.FPDF_ERR_PASSWORD:
                    raise EncryptedPdf(
                        "the PDF is encrypted and opens only with a password, which docfn does not"
                        " take: decrypt it (e.g. qpdf --decrypt --password=... in.pdf out.pdf) and send"
                        " that"
                    ) from exc
                raise BadInput(f"the PDF cannot be opened: {exc}") from exc
            return len(self._pdf)
        # Before Pillow opens it: opening a WebP allocates its whole canvas.
        canvas = canvas_size(self.data, self.format)
        if canvas is not None:
            self._check_pixels(*canvas, f"the {self.format.upper()} canvas")
        try:
            with Image.open(io.BytesIO(self.data)) as image:
                return int(getattr(image, "n_frames", 1))
        except DECODER_FAILURES as exc:
            raise BadInput(f"the {self.format.upper()} image cannot be read: {exc}") from exc

    def select(self, pages: list[int] | None) -> list[int]:
        """Validate a 0-based page selection against the document and the page limit."""
        if pages is None:
            pages = list(range(self.page_count))
        out_of_range = [p + 1 for p in pages if p >= self.page_count]
        if out_of_range:
            raise BadOptions(
                f"page {out_of_range[0]} is out of range: the document has {self.page_count} page(s)"
            )
        if len(pages) > self.limits.max_pages:
            raise PayloadTooLarge(
                f"{len(pages)} pages requested but at most {self.limits.max_pages} are processed per request;"
                " choose pages (pages=1-10) or use an asynchronous upload (POST /v1/uploads)"
            )
        return pages

    def render(self, index: int, *, text_layer: bool = False) -> PageImage:
        """Page ``index`` as pixels; ``text_layer``: with a PDF page's text layer read beside them."""
        if self.format == "pdf":
            return self._render_pdf(index, text_layer)
        return self._render_image(index)

    def _check_pixels(self, width: int, height: int, what: str) -> None:
        width, height = abs(width), abs(height)  # a PDF box may be given upside down
        if width * height > self.limits.max_pixels:
            raise PayloadTooLarge(
                f"{what} is {width}x{height} = {width * height:,} pixels;"
                f" the limit is {self.limits.max_pixels:,} pixels"
            )

    def _render_image(self, index: int) -> PageImage:
        try:
            with Image.open(io.BytesIO(self.data)) as image:
                if self.format in CANVAS_FORMATS:
                    self._check_pixels(image.width, image.height, f"the canvas of page {index + 1}")
                if index:
                    image.seek(index)
                # The frame's own header gives its size before a single pixel is decoded: refuse bombs
                # here, for every frame (a multi-frame TIFF's or MPO's later frames may be far larger).
                self._check_pixels(image.width, image.height, f"page {index + 1}")
                image.load()
                rgb = image.convert("RGB")
        except DECODER_FAILURES as exc:
            raise BadInput(f"the {self.format.upper()} image is corrupt or truncated: {exc}") from exc
        return PageImage(index=index, image=np.asarray(rgb))

    def _render_pdf(self, index: int, text_layer: bool) -> PageImage:
        assert self._pdf is not None
        import pypdfium2 as pdfium
        import pypdfium2.raw as pdfium_raw

        try:
            page = self._pdf[index]
        except pdfium.PdfiumError as exc:
            raise BadInput(f"PDF page {index + 1} cannot be read: {exc}") from exc
        try:
            width_pt, height_pt = page.get_size()
            scale = self.limits.pdf_dpi / 72.0
            self._check_pixels(round(width_pt * scale), round(height_pt * scale), f"PDF page {index + 1}")
            # RGB straight from pdfium into an array of our own: the same pixels as going through
            # Pillow's BGR -> RGB conversion, at a third of the cost (two fewer full-page copies).
            # pdfium draws into the array itself (no zeroed ctypes buffer to copy out of).
            arrays: list[np.ndarray] = []

            def into_array(width: int, height: int, format: int, rev_byteorder: bool) -> Any:
                arrays.append(np.empty((height, width, 3), dtype=np.uint8))
                buffer = (ctypes.c_ubyte * arrays[0].size).from_buffer(arrays[0])
                return pdfium.PdfBitmap.new_native(width, height, format, rev_byteorder, buffer=buffer)

            bitmap = page.render(
                scale=scale,
                rev_byteorder=True,
                force_bitmap_format=pdfium_raw.FPDFBitmap_BGR,
                bitmap_maker=into_array,
            )
            bitmap.close()
            (image,) = arrays
            layer = read_text_layer(page, (image.shape[1], image.shape[0])) if text_layer else None
        except pdfium.PdfiumError as exc:
            raise BadInput(f"PDF page {index + 1} cannot be rendered: {exc}") from exc
        finally:
            page.close()
        return PageImage(index=index, image=image, text_layer=layer)

    def close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()
            self._pdf = None


def check_body_size(data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"the body is {len(data):,} bytes; the synchronous limit is {max_bytes:,} bytes."
            " Upload larger inputs with POST /v1/uploads"
        )


def open_document(
    data: bytes,
    declared_type: str | None,
    limits: DecodeLimits,
    max_bytes: int,
) -> Document:
    check_body_size(data, max_bytes)
    fmt = check_format(data, declared_type)
    return Document(data, fmt, limits)
