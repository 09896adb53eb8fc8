"""The task lifecycle, after KServe's Model: ``load()`` once (lazily), then ``predict()`` many times.

A task knows nothing about HTTP, Lambda or the CLI; adapters call it through the service.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..core.errors import BadOptions
from ..core.inputs import Document
from ..core.settings import Settings
from ..packs.locate import FetchReport, PackRef, materialise, pack_ref_for


@dataclass
class LoadReport:
    """What a cold start cost, by phase (seconds)."""

    phases: dict[str, float] = field(default_factory=dict)
    performed: bool = False


# The CLI's output formats and the file suffix each is written with.
OUTPUT_SUFFIXES: dict[str, str] = {"json": ".json", "md": ".md", "text": ".txt"}


class Task(ABC):
    name: ClassVar[str]
    needs_pack: ClassVar[bool] = True
    # Packs used besides the task's own, by role (e.g. parse = layout pack + an "ocr" pack). Each
    # comes from the setting ``DOCFN_<ROLE>_MODEL_URI``, else the default pack of task ``role``.
    extra_packs: ClassVar[tuple[str, ...]] = ()
    # Options the CLI adds unless the user gave them (e.g. parse embeds figure images for the CLI).
    cli_options: ClassVar[dict[str, str]] = {}

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pack_ref: PackRef | None = (
            pack_ref_for(self.name, settings.model_uri) if self.needs_pack else None
        )
        self.extra_refs: dict[str, PackRef] = {
            role: pack_ref_for(role, getattr(settings, f"{role}_model_uri", None))
            for role in self.extra_packs
        }
        self.extra_fetched: dict[str, FetchReport] = {}
        self.ready = not self.needs_pack
        self.load_error: Exception | None = None
        self._load_lock = threading.Lock()
        self.load_report = LoadReport()

    @property
    def version_id(self) -> str:
        """Feeds the cache key: a new model pack never serves an old result."""
        own = self.pack_ref.pack_id if self.pack_ref else f"{self.name}-builtin@1"
        # Every pack that shapes the result is in the key: a new OCR pack must not serve old parses.
        return "+".join([own, *(ref.pack_id for ref in self.extra_refs.values())])

    def load(self) -> LoadReport:
        """Fetch + verify the pack and build sessions, exactly once even under concurrent callers.

        Returns a report whose ``performed`` is True only for the caller that did the work.
        A failed load is not remembered as loaded: the next request tries again.
        """
        if self.ready:
            return LoadReport()
        with self._load_lock:
            if self.ready:
                return LoadReport()
            report = LoadReport(performed=True)
            try:
                if self.pack_ref is not None:
                    fetched = materialise(
                        self.pack_ref,
                        self.settings.model_store,
                        s3_endpoint_url=self.settings.s3_endpoint_url,
                    )
                    report.phases["fetch"] = fetched.fetch_seconds
                    report.phases["verify"] = fetched.verify_seconds
                    for role, ref in self.extra_refs.items():
                        extra = materialise(
                            ref, self.settings.model_store, s3_endpoint_url=self.settings.s3_endpoint_url
                        )
                        self.extra_fetched[role] = extra
                        report.phases["fetch"] += extra.fetch_seconds
                        report.phases["verify"] += extra.verify_seconds
                    start = time.perf_counter()
                    self.build(fetched)
                    report.phases["session_create"] = time.perf_counter() - start
                self.ready = True
                self.load_error = None
            except Exception as exc:
                self.load_error = exc
                raise
            self.load_report = report
            return report

    def build(self, pack: FetchReport) -> None:  # noqa: B027 - tasks without weights need nothing
        """Build runtime objects (ONNX sessions) from a verified local pack."""

    def parse_options(self, raw: Mapping[str, str]) -> dict[str, Any]:
        """Validate query options into a canonical dict (it is hashed into the cache key)."""
        unknown = sorted(set(raw) - set(self.option_names()) - {"pages"})
        if unknown:
            raise BadOptions(
                f"unknown option(s) {unknown} for task {self.name}; known: {self.option_names()}"
            )
        return {}

    def option_names(self) -> list[str]:
        return []

    @abstractmethod
    def predict(self, document: Document, pages: list[int], options: dict[str, Any]) -> dict[str, Any]:
        """Run the task on the selected 0-based pages of ``document``."""

    def render(self, result: dict[str, Any], fmt: str) -> str:
        """``text`` or ``md`` renderings of a result (``json`` is the result itself)."""
        return str(result.get("markdown") or result.get("text") or "")

    def write_outputs(
        self, result: dict[str, Any], rendered: str, out_dir: Path, stem: str, fmt: str
    ) -> list[Path]:
        """Write the CLI's ``--out`` files for one input: by default the one rendering."""
        target = out_dir / (stem + OUTPUT_SUFFIXES[fmt])
        target.write_text(rendered, encoding="utf-8")
        return [target]


def parse_bool(name: str, value: str | None, default: bool) -> bool:
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise BadOptions(f"option {name} must be true or false, not {value!r}")


def parse_float(name: str, value: str | None, default: float, low: float, high: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise BadOptions(f"option {name} must be a number, not {value!r}") from None
    if not low <= number <= high:
        raise BadOptions(f"option {name} must be between {low} and {high}, not {number}")
    return number
