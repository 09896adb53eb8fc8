"""A sequence's text as its tokens are decoded: deltas to stream, and OpenAI ``stop`` strings.

Detokenising token by token is vLLM's incremental scheme: decode a short window of recent tokens and
emit what it adds beyond the window's earlier part, holding back a trailing ``\\ufffd`` (a byte-level
token that ends inside a UTF-8 character) until the next token completes it. With stop strings, the
last ``longest stop - 1`` characters are held back too (they may be the start of a stop string), and
the text ends before the first stop string found; decoding then stops (vLLM matches stops on the
detokenised output likewise).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

# Decodes token ids to text (the tokenizer's decode, with its skip_special_tokens setting bound).
Decode = Callable[[list[int]], str]
# Receives each new piece of text, in order (a streamed answer's content chunks).
TextSink = Callable[[str], None]


class TextStream:
    def __init__(self, decode: Decode, stops: Sequence[str] = (), sink: TextSink | None = None) -> None:
        self._decode = decode
        self._stops = [stop for stop in stops if stop]
        self._hold = max((len(stop) for stop in self._stops), default=1) - 1
        self._sink = sink
        self._tokens: list[int] = []
        self._prefix = 0  # the window's start
        self._read = 0  # tokens whose text is already in self.text
        self.text = ""  # detokenised so far (cut before a stop string once one is found)
        self._sent = 0  # characters of self.text given to the sink
        self.stopped = False

    def push(self, token: int) -> bool:
        """Add a decoded token; True once the text holds a stop string (decoding should stop)."""
        self._tokens.append(token)
        before = self._decode(self._tokens[self._prefix : self._read])
        after = self._decode(self._tokens[self._prefix :])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            searched_from = max(0, len(self.text) - self._hold)
            self.text += after[len(before) :]
            self._prefix, self._read = self._read, len(self._tokens)
            found = [at for at in (self.text.find(s, searched_from) for s in self._stops) if at >= 0]
            if found:
                self.text, self.stopped = self.text[: min(found)], True
                self._send(len(self.text))
                return True
        self._send(len(self.text) - self._hold)
        return False

    def finish(self, whole: str | None = None) -> str:
        """The final text, every character of it sent. ``whole``: the answer decoded at once, which
        replaces what incremental decoding gave when no stop string cut it (the same text, but a
        trailing incomplete character is kept as the tokenizer renders it)."""
        if whole is not None and not self.stopped and whole.startswith(self.text[: self._sent]):
            self.text = whole
        self._send(len(self.text))
        return self.text

    def _send(self, upto: int) -> None:
        if upto > self._sent:
            if self._sink is not None:
                self._sink(self.text[self._sent : upto])
            self._sent = upto
