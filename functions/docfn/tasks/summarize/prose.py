"""Whether a sentence of a parsed document is prose: code listings, TeX source, formulas and table
rows are not sentences, wherever the layout model put them.

Parse boxes a code listing or a LaTeX example as a text block often enough (an unindented display,
a "figure" read as text, a listing run on after a paragraph), and the sentence splitter then hands
its lines over as sentences; LexRank rates them like any other. The marks looked for are the ones
parse uses for code lines (``parse.text``), plus the share of symbols prose rarely uses.
"""

from __future__ import annotations

import re

# Marks of code or TeX: a backslash command applied (to braces or a bracket) or chained to another
# (prose about TeX names commands, "\\RaggedLeft, and \\RaggedRight": no mark), braces, assignment
# or comparison operators, arrows, a comment, a call with nothing or one word between parentheses
# ("main(void)", "f()"), a caret between word characters (x^2; not an underscore: prose names
# identifiers such as asn1_create), a statement's end followed by more code ("i = 0; i < n").
_CODE_MARK = re.compile(
    r"\\[A-Za-z]+(?=[{\[\\@%])|[{}]|::=|:=|->|=>|==|!=|\+=|-=|&&|\|\||//|/\*|\w\(\w*\)|\w[\^ˆ]\w|;\s*[\w(]+\s*[<>=+-]"
)
# Characters prose uses besides letters, digits and spaces.
_PROSE_PUNCTUATION = frozenset(".,;:!?'\"()[]-–—‘’“”%/&…·、，。；：！？（）《》「」")
# Above this share of its visible characters in other symbols (= < > + * ^ | # $ ~ @ …), a sentence
# is a formula or code (measured: English prose 0-0.03, a citation with brackets 0.08; code 0.2+).
MAX_SYMBOL_SHARE = 0.12
MIN_WORDS = 3  # an alphabetic text with fewer words is a label, a number or a fragment of a table
# Marks of code allowed per word of letters (measured on the devset's ragged2e page and the test's
# listings: prose naming commands 0-0.2; TeX source, C and formulas 0.6 and up).
MAX_MARKS_PER_WORD = 0.5
# A word of letters that is not a command's name (after a backslash) or inside an identifier.
_WORD = re.compile(r"(?<![\\\w])[^\W\d_]{2,}")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def is_prose(sentence: str) -> bool:
    """Whether ``sentence`` reads as prose rather than code, a formula or a table row: few marks of
    code per word (prose about TeX names its commands: "\\justifying switches back to justified
    text" has 1 in 9 words; a line of TeX source has more marks than words)."""
    text = sentence.strip()
    if not text or len(_CODE_MARK.findall(text)) > MAX_MARKS_PER_WORD * len(_WORD.findall(text)):
        return False
    visible = [c for c in text if not c.isspace()]
    symbols = sum(1 for c in visible if not c.isalnum() and c not in _PROSE_PUNCTUATION)
    if symbols > MAX_SYMBOL_SHARE * len(visible):
        return False
    if len(_CJK.findall(text)) >= 4:  # Chinese has no spaces to count words by
        return True
    return len(_WORD.findall(text)) >= MIN_WORDS


# Where a run-on "sentence" may be cut: after a sentence's end, whatever follows (the splitter does
# not cut before a lowercase word, which is how "... they run. int main(void) {" stays one).
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


def prose_parts(sentence: str) -> tuple[list[str], int]:
    """The prose in ``sentence``: itself when it is prose, else its parts cut at sentence ends that
    are (a paragraph with a listing run on after it keeps the paragraph); and how many parts were not."""
    if is_prose(sentence):
        return [sentence], 0
    parts = [part for part in _SENTENCE_END.split(sentence.strip()) if part]
    kept = [part for part in parts if is_prose(part)]
    return kept, len(parts) - len(kept)
