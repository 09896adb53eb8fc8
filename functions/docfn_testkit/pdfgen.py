"""Real PDFs with known text layers: born-digital pages typeset by groff (``groff -Tpdf``, installed
by ``scripts/test``), scanned pages (a devset PNG as the page's only content), pages whose text
layer is garbage (groff's own PDF with its ToUnicode map rewritten by pypdf), and pages whose text
is partly drawn as an image (pdfium's own page-object API: a text object beside an image object).
"""

from __future__ import annotations

import ctypes
import io
import shutil
import subprocess
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_raw
from PIL import Image
from pypdf import PdfReader, PdfWriter, Transformation
from pypdf.generic import DecodedStreamObject, NameObject

from .docgen import font, pdf_from_images

# Lines a born-digital test page holds, exactly (no-fill mode: one input line is one printed line).
BORN_DIGITAL_LINES = [
    "Libtasn1 parses ASN.1 DER data: 0123456789.",
    "The quick brown fox jumps over the lazy dog.",
    "Section 2.1 describes asn1_create_element (node *root).",
    "Prices rose by 42% in 2023; see Table 3 [p. 17].",
]


def groff_ms_pdf(source: str, *preprocessors: str) -> bytes:
    """A PDF typeset by groff's PDF device from ``ms`` macro ``source`` (``preprocessors``: groff's
    options for them, such as ``-t`` for tbl and ``-e`` for eqn)."""
    groff = shutil.which("groff")
    if groff is None:
        raise RuntimeError("groff is not installed: scripts/test installs it (apt-get install groff)")
    command = [groff, *preprocessors, "-ms", "-Tpdf", "-P-pa4"]
    return subprocess.run(command, input=source.encode(), capture_output=True, check=True).stdout


def groff_pdf(lines: list[str], *, title: str | None = None) -> bytes:
    """One page with ``lines`` printed as given (no fill, no hyphens), under a larger ``title``."""
    source = [".nh", ".nf", ".ps 12", ".vs 16"]
    if title:
        source += [".ps 20", title, ".ps 12", ""]
    # Lines starting with "." or "'" would be requests: guard each with a zero-width escape.
    source += ["\\&" + line.replace("\\", "\\e") for line in lines]
    return groff_ms_pdf("\n".join(source))


# A manual page: a numbered section heading, a paragraph ending in a colon, an indented example in
# a constant-width font, a bulleted list and a closing paragraph (groff ms macros).
MANUAL_SOURCE = r"""
.NH
Naming the elements
.PP
Every structure read by the library is named by its definition module and its type.
Consider this definition:
.DS I 4n
.ft CW
Example { 1 2 3 4 } DEFINITIONS ::= BEGIN
Group ::= SEQUENCE { id OBJECT IDENTIFIER, value Value }
Value ::= SEQUENCE { value1 INTEGER, value2 BOOLEAN }
END
.ft
.DE
.PP
The library supports these types:
.IP \(bu 3n
UTF8String and VisibleString;
.IP \(bu 3n
SEQUENCE and SEQUENCE OF;
.IP \(bu 3n
SET, SET OF and CHOICE.
.PP
Elements of structured types unnamed by the respective definition receive the names ?1, ?2, and so on.
"""
# Hyphens at line ends, both kinds (a 1-inch measure with groff's hyphenation on): "well-" +
# "known" breaks at a compound's own hyphen, "estab-" + "lishment" and "inter-" + "nationalization"
# are groff's word breaks. The last paragraph, on a wider measure, prints "well-known" on one line.
HYPHENS_SOURCE = r"""
.nr LL 1.0i
.hy 1
.PP
Paragraphs about a well-known method.
.PP
The establishment of internationalization.
.nr LL 3i
.PP
A well-known rival, a state-of-the-art one.
"""
HYPHENS_PARAGRAPHS = [
    "Paragraphs about a well-known method.",
    "The establishment of internationalization.",
    "A well-known rival, a state-of-the-art one.",
]


# A page of listings with two prose sentences: a C program, LaTeX source (an equation, a fraction)
# and a loop in constant-width displays, between a sentence above and one below.
PROSE_SENTENCES = [
    "Compilers translate source programs into machine code before they run.",
    "An interpreter instead executes each statement directly as it reads the program.",
]
LISTINGS = r"""
.DS L
.ft CW
int main(void) {
    printf("hello, world\en");
    return 0;
}
.ft
.DE
.DS L
.ft CW
\ebegin{equation}
  E = mc^2 \elabel{eq:energy}
\eend{equation}
\efrac{a}{b} + \esqrt{x^2 + y^2}
.ft
.DE
.DS L
.ft CW
for (i = 0; i < n; i++) {
    total += values[i];
}
x := y -> z; // update
.ft
.DE
"""
LISTINGS_AND_PROSE_SOURCE = f".PP\n{PROSE_SENTENCES[0]}\n{LISTINGS}.PP\n{PROSE_SENTENCES[1]}\n"


MANUAL_CODE = [
    "Example { 1 2 3 4 } DEFINITIONS ::= BEGIN",
    "Group ::= SEQUENCE { id OBJECT IDENTIFIER, value Value }",
    "Value ::= SEQUENCE { value1 INTEGER, value2 BOOLEAN }",
    "END",
]
MANUAL_ITEMS = ["UTF8String and VisibleString;", "SEQUENCE and SEQUENCE OF;", "SET, SET OF and CHOICE."]


def _cmap(pairs: dict[int, int]) -> bytes:
    body = "\n".join(f"<{code:04x}> <{target:04x}>" for code, target in sorted(pairs.items()))
    return (
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Adobe-Identity-UCS def /CMapType 2 def\n"
        "1 begincodespacerange <00> <ff> endcodespacerange\n"
        f"{len(pairs)} beginbfchar\n{body}\nendbfchar\n"
        "endcmap CMapName currentdict /CMap defineresource pop end end\n"
    ).encode()


def with_tounicode(pdf: bytes, mapping: dict[int, int], fonts: set[str] | None = None) -> bytes:
    """The PDF with every font's ToUnicode map (or only those whose ``/BaseFont`` is in ``fonts``)
    replaced by ``mapping`` (character code -> Unicode): a broken map, as producers that subset fonts
    sometimes write."""
    reader = PdfReader(io.BytesIO(pdf))
    writer = PdfWriter(clone_from=reader)
    for page in writer.pages:
        page_fonts = page["/Resources"]["/Font"]
        for name in page_fonts:
            base = str(page_fonts[name].get_object().get("/BaseFont", "")).lstrip("/")
            if fonts is not None and base not in fonts:
                continue
            stream = DecodedStreamObject()
            stream.set_data(_cmap(mapping))
            page_fonts[name].get_object()[NameObject("/ToUnicode")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def shifted_letters() -> dict[int, int]:
    """A ToUnicode map that names every letter's glyph as the next letter: plausible, wrong text."""
    pairs = {}
    for first, last in ((ord("a"), ord("z")), (ord("A"), ord("Z"))):
        for code in range(first, last + 1):
            pairs[code] = first + (code - first + 1) % (last - first + 1)
    return pairs


def vowels_rotated() -> dict[int, int]:
    """A ToUnicode map right for every printable code but the vowels, each named as the next one
    (a->e, e->i, i->o, o->u, u->a, and the capitals): glyphs drawn right, words extracted wrong in
    about a third of their letters (below the CER 0.4 an earlier check allowed)."""
    pairs = {code: code for code in range(0x20, 0x7F)}
    for vowels in ("aeiou", "AEIOU"):
        for n, vowel in enumerate(vowels):
            pairs[ord(vowel)] = ord(vowels[(n + 1) % len(vowels)])
    return pairs


def replacement_characters() -> dict[int, int]:
    """Every character code to U+FFFD: a text layer that decodes to nothing but garbage."""
    return dict.fromkeys(range(256), 0xFFFD)


def encrypted(pdf: bytes, password: str = "secret") -> bytes:
    """The PDF encrypted (AES-256) with a user password: it opens only with that password."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def private_use() -> dict[int, int]:
    """A ToUnicode map that sends every printable code to the private-use area."""
    return {code: 0xE000 + code for code in range(0x21, 0x7F)}


def scanned_pdf(png: Path) -> bytes:
    """An image-only PDF page from a PNG (what a scanner produces)."""
    return pdf_from_images([Image.open(png).convert("RGB")])


def text_beside_image_pdf(caption: str, image_lines: list[str]) -> bytes:
    """An A4 page with ``caption`` as real text (a Helvetica text object) and ``image_lines``
    only as pixels of an image object below it (a screenshot of code pasted into a document)."""
    picture = Image.new("RGB", (1100, 60 + 50 * len(image_lines)), "white")
    from PIL import ImageDraw

    draw = ImageDraw.Draw(picture)
    for n, line in enumerate(image_lines):
        draw.text((30, 30 + 50 * n), line, font=font(30), fill="black")
    document = pdfium.PdfDocument.new()
    page = document.new_page(595, 842)
    text = pdfium_raw.FPDFPageObj_NewTextObj(document, b"Helvetica", ctypes.c_float(14))
    encoded = (caption + "\0").encode("utf-16-le")
    pdfium_raw.FPDFText_SetText(text, ctypes.cast(ctypes.c_char_p(encoded), ctypes.POINTER(ctypes.c_ushort)))
    pdfium_raw.FPDFPageObj_Transform(text, 1, 0, 0, 1, 60, 760)
    pdfium_raw.FPDFPage_InsertObject(page, text)
    image = pdfium.PdfImage.new(document)
    image.set_bitmap(pdfium.PdfBitmap.from_pil(picture))
    width_pt = 475.0
    height_pt = width_pt * picture.height / picture.width
    image.set_matrix(pdfium.PdfMatrix().scale(width_pt, height_pt).translate(60, 700 - height_pt))
    page.insert_obj(image)
    page.gen_content()
    out = io.BytesIO()
    document.save(out)
    document.close()
    return out.getvalue()


def overlaid(pdf: bytes, stamp: bytes, *, x: float, y: float, width: float) -> bytes:
    """``pdf``'s first page with ``stamp``'s first page drawn on it (its image and any invisible
    text alike), scaled to ``width`` points with its lower-left corner at (``x``, ``y``): a scanned
    clipping with its OCR layer pasted into a born-digital page."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    stamp_page = PdfReader(io.BytesIO(stamp)).pages[0]
    scale = width / float(stamp_page.mediabox.width)
    writer.pages[0].merge_transformed_page(stamp_page, Transformation().scale(scale).translate(x, y))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def joined(pdfs: list[bytes]) -> bytes:
    """One PDF with the pages of ``pdfs`` in order."""
    writer = PdfWriter()
    for pdf in pdfs:
        writer.append(PdfReader(io.BytesIO(pdf)))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
