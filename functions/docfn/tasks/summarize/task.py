"""The ``summarize`` task: a summary of a requested length, the source sentences it rests on (with
page and box for documents, character spans for text), the language, and the engine that wrote it.

Inputs: plain text, Markdown or JSON ``{"text": ...}``; images and PDFs arrive as parse's result (the
service runs parse first, in-process, through parse's cache). Engines: extractive (LexRank, no model,
the default), ``llm`` (an OpenAI-compatible endpoint, DOCFN_SUMMARIZE_URL) and ``vlm`` (the VLM
pack's language model, DOCFN_VLM_MODEL_URI). An abstractive engine that fails, or whose deadline is
near, falls back to extractive and says why in ``fallback``; such a result is not cached.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ...core.errors import BadOptions, PayloadTooLarge
from ...core.sentences import detect_language
from ...core.settings import Settings
from ...core.text_input import TextInput
from ...packs.store import LocalPack
from ..contract import Progress, TextTask
from ..instruction import InstructionNotApplied
from ..vlm import loading
from ..vlm.batching import Batching
from ..vlm.blocks import VLM_PACK, VlmGenerator
from . import abstractive, extractive
from .options import SummarizeOptions
from .source import Source, from_parse, from_text
from .writers import LLM_WRITER, NamedWriter, WriteMany, Writer, WriterFailed, vlm_write, vlm_write_many

_CJK_GAP = re.compile(r"(?<=[\u3000-\u9fff\uff00-\uffef]) (?=[\u3000-\u9fff\uff00-\uffef])")


class SummarizeTask(TextTask):
    name = "summarize"
    Options = SummarizeOptions
    optional_pack_roles = (VLM_PACK,)

    def __init__(
        self,
        threads: int = 0,
        *,
        max_chars: int = 2_000_000,
        part_tokens: int = 3000,
        vlm_configured: bool = False,
        batching: Batching | None = None,
    ) -> None:
        super().__init__(threads)
        self.endpoint: NamedWriter | None = None
        self.vlm: VlmGenerator | None = None
        self.vlm_id: str | None = None
        self.max_chars = max_chars
        self.part_tokens = part_tokens
        # engine=auto uses the VLM only where a deployment named one (DOCFN_VLM_MODEL_URI).
        self.vlm_configured = vlm_configured
        self.batching = batching or Batching()

    @classmethod
    def from_settings(cls, settings: Settings) -> SummarizeTask:
        return cls(
            settings.onnx_threads,
            max_chars=settings.summarize_max_chars,
            part_tokens=settings.summarize_part_tokens,
            vlm_configured=settings.vlm_model_uri is not None,
            batching=Batching.from_settings(settings),
        )

    def bind(self, bindings: Mapping[str, Any]) -> None:
        self.endpoint = bindings.get(LLM_WRITER)

    def load(self, packs: Mapping[str, LocalPack]) -> None:
        return None  # the extractive engine needs no pack; the VLM loads on a request that uses it

    def optional_roles_for(self, options: SummarizeOptions) -> tuple[str, ...]:
        return (VLM_PACK,) if self.engine(options) == "vlm" else ()

    def load_optional(self, role: str, pack: LocalPack) -> None:
        # The function's one batching engine, shared with every other VLM caller in the process.
        self.vlm = loading.load_engine(pack, self.threads, self.batching)
        self.vlm_id = pack.manifest.pack_id

    def apply_instruction(self, options: SummarizeOptions, instruction: str) -> SummarizeOptions:
        raise InstructionNotApplied(
            f"not applied: summarize writes its summary with its {self.engine(options)} engine's own"
            " method and prompt; send the image to /vlm to ask the VLM in your own words"
        )

    def engine(self, options: SummarizeOptions) -> str:
        """The engine a request gets: ``auto`` is the best one configured."""
        if options.engine != "auto":
            return options.engine
        if self.endpoint is not None:
            return "llm"
        return "vlm" if self.vlm_configured else "extractive"

    def check_options(self, options: SummarizeOptions) -> None:
        wanted = self.engine(options)
        if wanted == "llm" and self.endpoint is None:
            raise BadOptions("engine=llm needs DOCFN_SUMMARIZE_URL (an OpenAI-compatible endpoint)")

    def cache_identity(self, options: SummarizeOptions) -> dict[str, Any]:
        # The VLM pack is in the request's version (an optional pack role); the endpoint is not.
        engine = self.engine(options)
        if engine == "llm" and self.endpoint is not None:
            return {"engine_used": engine, "llm": self.endpoint.identity}
        return {"engine_used": engine}

    def cacheable(self, result: dict[str, Any]) -> bool:
        return result.get("fallback") is None  # the endpoint may answer next time

    def predict_text(
        self,
        given: TextInput | dict[str, Any],
        options: SummarizeOptions,
        *,
        progress: Progress | None = None,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        source = from_text(given) if isinstance(given, TextInput) else from_parse(given)
        text = source.text()
        if len(text) > self.max_chars:
            raise PayloadTooLarge(
                f"the text is {len(text):,} characters; summarize reads at most {self.max_chars:,}"
                " (DOCFN_SUMMARIZE_MAX_CHARS): send fewer pages or a part of the text"
            )
        language = detect_language(text) if options.language == "auto" else options.language
        about = {
            "input": "text" if isinstance(given, TextInput) else "document",
            "chars": len(text),
            "sentences": len(source.sentences),
            "sections": len(source.sections),
        }
        if not isinstance(given, TextInput):
            about["left_out"] = dict(source.left_out)
        if not source.sentences:
            empty: dict[str, Any] = {
                "summary": "",
                "sources": [],
                "language": language,
                "engine": extractive.ENGINE,
                "fallback": None,
                "parts": 0,
                "source": about,
            }
            if source.left_out:
                empty["note"] = no_prose_note(source.left_out)
            return empty
        engine, fallback = self.engine(options), None
        if engine != "extractive":
            write, write_many, name = self._writer(engine)
            try:
                return self._abstractive(
                    source, options, language, write, write_many, name, about, progress, deadline
                )
            except WriterFailed as exc:
                fallback = {"engine": name, "reason": str(exc)}
        return self._extractive(source, options, language, about, progress, fallback)

    def _writer(self, engine: str) -> tuple[Writer, WriteMany | None, str]:
        """The engine's writer, how it writes several prompts together (None: one by one), its name."""
        if engine == "llm":
            assert self.endpoint is not None
            return self.endpoint, None, self.endpoint.name
        vlm = self.vlm
        assert vlm is not None  # loaded by the service before predict_text (optional_roles_for)
        return (
            (lambda prompt, tokens, deadline: vlm_write(vlm, prompt, tokens, deadline)),
            (lambda prompts, tokens, deadline: vlm_write_many(vlm, prompts, tokens, deadline)),
            f"vlm:{self.vlm_id}",
        )

    def _extractive(
        self,
        source: Source,
        options: SummarizeOptions,
        language: str,
        about: dict[str, Any],
        progress: Progress | None,
        fallback: dict[str, str] | None,
    ) -> dict[str, Any]:
        count = None if options.chars is not None else options.sentence_budget()
        chosen = extractive.summarize(source.sentences, language, count, options.chars, progress)
        picked = [source.sentences[i] for i in chosen]
        return {
            "summary": readable(s.text for s in picked),
            "sources": [_where(s, source) for s in picked],
            "language": language,
            "engine": extractive.ENGINE,
            "fallback": fallback,
            "parts": -(-len(source.sentences) // extractive.PART_SENTENCES),
            "source": about,
        }

    def _abstractive(
        self,
        source: Source,
        options: SummarizeOptions,
        language: str,
        write: Writer,
        write_many: WriteMany | None,
        name: str,
        about: dict[str, Any],
        progress: Progress | None,
        deadline: float | None,
    ) -> dict[str, Any]:
        count = None if options.chars is not None else options.sentence_budget()
        summary, parts = abstractive.summarize(
            source.sentences,
            write,
            language=language,
            count=count,
            chars=options.chars,
            max_tokens=options.max_tokens,
            part_tokens=self.part_tokens,
            deadline=deadline,
            progress=progress,
            write_many=write_many,
        )
        if not summary.strip():
            raise WriterFailed(f"{name} answered with no text")
        grounds = abstractive.grounding(summary, source.sentences, options.sentence_budget())
        return {
            "summary": summary,
            "sources": [_where(source.sentences[i], source) for i in grounds],
            "language": language,
            "engine": name,
            "fallback": None,
            "parts": parts,
            "source": about,
        }


def no_prose_note(left_out: Mapping[str, int]) -> str:
    """Why a document with content got an empty summary: none of it is prose."""
    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(left_out.items()))
    return (
        "no prose to summarise: the document holds only code, formulas or tables"
        f" (left out: {kinds}); a summary is made of prose sentences"
    )


def readable(texts: Iterable[str]) -> str:
    """Sentences as one line of prose: a source's line breaks and runs of spaces (page layout) go;
    CJK characters on either side of a break join without a space."""
    joined = " ".join(" ".join(text.split()) for text in texts)
    return _CJK_GAP.sub("", joined)


def _where(sentence: Any, source: Source) -> dict[str, Any]:
    return {**sentence.provenance(), "heading_path": source.sections[sentence.section]}
