"""The OCR page sets beyond the devset: a tuning set and a held-out set, fixed and disjoint.

Real typeset pages from the PDF manuals in Debian's TeX Live packages ``texlive-lang-chinese`` and
``texlive-science-doc`` (version 2022.20230122; ``apt-get install`` them), rendered by pdfium at the
DPI given, truth = ``pdftotext -layout`` of the same page (as the devset's text files were made,
poppler-utils). Nothing here is committed: the pages are made from the installed PDFs at run time.

- ``TUNING``: what detector/recogniser settings are chosen on. The devset's ten pages (150 dpi)
  plus pages of other documents at 100, 150, 200 and 300 dpi (a page's text height on the detector's
  input follows the DPI; one fixed input size cannot suit all of them).
- ``HELD_OUT``: reported on, never tuned on. Thirteen pages at 150 dpi from documents (and TeX
  packages) that are in neither the devset nor ``TUNING``: Chinese, mathematics, English prose,
  tables and algorithms, the categories the issue names.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from docfn.tooling.evaluate import EvalPage, load_pages

DOC = Path("/usr/share/texlive/texmf-dist/doc")
PACKAGES = ("texlive-lang-chinese", "texlive-science-doc", "poppler-utils")


@dataclass(frozen=True)
class PdfPage:
    pdf: str  # under DOC
    page: int  # 1-based, as pdftotext counts
    category: str
    dpi: int = 150

    @property
    def id(self) -> str:
        return f"{Path(self.pdf).stem}-p{self.page}@{self.dpi}"


# Documents (TeX packages) the tuning set reads: ctex-faq, zhlipsum, simples-matrices and bytefield
# are the devset's own sources (other pages); algorithms, pseudocode, algpseudocodex are not.
_TUNING_PDFS = [
    ("latex/ctex-faq/ctex-faq.pdf", 5, "zh"),
    ("latex/ctex-faq/ctex-faq.pdf", 12, "zh"),
    ("latex/zhlipsum/zhlipsum.pdf", 3, "zh"),
    ("latex/simples-matrices/simples-matrices-eng.pdf", 4, "math"),
    ("latex/bytefield/bytefield.pdf", 3, "en"),
    ("latex/algorithms/algorithms.pdf", 5, "algorithm"),
    ("latex/pseudocode/pseudocode.pdf", 5, "algorithm"),
    ("latex/algpseudocodex/algpseudocodex.pdf", 3, "algorithm"),
]
TUNING_DPIS = (100, 150, 200, 300)
TUNING: list[PdfPage] = [
    PdfPage(pdf, page, cat, dpi) for dpi in TUNING_DPIS for pdf, page, cat in _TUNING_PDFS
]

HELD_OUT: list[PdfPage] = [
    PdfPage("latex/ctex/ctex.pdf", 20, "zh"),
    PdfPage("xelatex/xecjk/xeCJK.pdf", 10, "zh"),
    PdfPage("latex/zhnumber/zhnumber.pdf", 5, "zh"),
    PdfPage("latex/fduthesis/fduthesis.pdf", 5, "zh"),
    PdfPage("latex/diffcoeff/diffcoeff.pdf", 8, "math"),
    PdfPage("latex/isomath/isomath.pdf", 5, "math"),
    PdfPage("latex/siunitx/siunitx.pdf", 10, "en"),
    PdfPage("latex/fduthesis/fduthesis-en.pdf", 5, "en"),
    PdfPage("latex/nicematrix/nicematrix.pdf", 10, "table"),
    PdfPage("latex/siunitx/siunitx.pdf", 30, "table"),
    PdfPage("latex/algorithm2e/algorithm2e.pdf", 10, "algorithm"),
    PdfPage("latex/algorithmicx/algorithmicx.pdf", 6, "algorithm"),
    PdfPage("latex/clrscode/clrscode.pdf", 5, "algorithm"),
]


def _stem(pdf: str) -> str:
    return Path(pdf).parent.name


def check_disjoint() -> None:
    """No TeX package's document is in both sets (nor the held-out set in the devset)."""
    held = {_stem(p.pdf) for p in HELD_OUT}
    tuned = {_stem(p.pdf) for p in TUNING}
    assert not held & tuned, held & tuned


def render(spec: PdfPage) -> EvalPage:
    import pypdfium2 as pdfium

    path = DOC / spec.pdf
    if not path.is_file():
        raise SystemExit(f"{path} is missing: apt-get install {' '.join(PACKAGES)}")
    document = pdfium.PdfDocument(str(path))
    try:
        page = document[spec.page - 1]
        image = page.render(scale=spec.dpi / 72.0).to_pil().convert("RGB")
        page.close()
    finally:
        document.close()
    truth = subprocess.run(
        ["pdftotext", "-layout", "-enc", "UTF-8", "-f", str(spec.page), "-l", str(spec.page), str(path), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return EvalPage(spec.id, np.asarray(image), truth)


def page_set(name: str, devset: Path) -> tuple[list[EvalPage], dict[str, str]]:
    """Pages and each page's category: ``heldout``, ``tuning`` (devset + TUNING) or ``devset``."""
    import json

    check_disjoint()
    pages: list[EvalPage] = []
    categories: dict[str, str] = {}
    if name in ("tuning", "devset"):
        entries = json.loads((devset / "manifest.json").read_text())
        pages += load_pages(devset, [str(e["id"]) for e in entries])
        categories.update({str(e["id"]): e["category"] for e in entries})
    specs = {"heldout": HELD_OUT, "tuning": TUNING, "devset": []}[name]
    for spec in specs:
        pages.append(render(spec))
        categories[spec.id] = spec.category
    return pages, categories
