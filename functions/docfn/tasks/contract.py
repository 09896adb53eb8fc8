"""The task contract, after KServe's Model: ``load()`` once, then ``predict_page()`` per page and
``combine()`` per request.

A task is pure inference: it gets verified local packs and decoded pages, and knows nothing about
where packs come from, caching, limits, page loops, HTTP, Lambda or the CLI. The service
(``docfn.service``) hosts tasks: it fetches their packs, owns readiness, the page loop and progress.

Each task declares its options as a pydantic model (``Options``), so every entry point validates them
the same way and the HTTP adapter documents them in OpenAPI. ``pages`` is an option like any other.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..core.documents import PageImage, parse_page_ranges
from ..core.errors import BadOptions
from ..core.settings import Settings
from ..core.text_input import TextInput
from ..packs.refs import OWN_PACK
from ..packs.store import LocalPack
from .instruction import InstructionNotApplied


class TaskOptions(BaseModel):
    """Options every task takes. Subclasses add their own fields (with bounds and descriptions)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pages: str | None = Field(
        default=None,
        description="Pages to process, 1-based ranges such as 1-3,7 (default: every page).",
        examples=["1-3,7"],
    )

    @field_validator("pages")
    @classmethod
    def _valid_ranges(cls, value: str | None) -> str | None:
        try:
            parse_page_ranges(value)
        except BadOptions as exc:
            raise ValueError(exc.message) from None
        return value

    def page_list(self) -> list[int] | None:
        """0-based page indices, or None for every page."""
        return parse_page_ranges(self.pages)

    def cache_fields(self) -> dict[str, Any]:
        """What of the options shapes the result (pages enter the cache key resolved, not as text)."""
        return self.model_dump(exclude={"pages"})


def validate_options(model: type[TaskOptions], raw: Mapping[str, Any], task: str) -> TaskOptions:
    """``raw`` (query parameters, form fields, a job's options) as ``model``; :class:`BadOptions` (422)
    with one readable sentence otherwise."""
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        unknown = sorted(str(e["loc"][0]) for e in exc.errors() if e["type"] == "extra_forbidden")
        if unknown:
            known = sorted(model.model_fields)
            raise BadOptions(f"unknown option(s) {unknown} for task {task}; known: {known}") from None
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"]) or "options"
        given = first.get("input")
        raise BadOptions(f"option {name} {first['msg'].lower()}, not {given!r}") from None


def page_fields(page: PageImage) -> dict[str, int]:
    """What every per-page result starts with: the 1-based page number and the page's pixel size."""
    width, height = page.size
    return {"page": page.index + 1, "width": width, "height": height}


class Task(ABC):
    """One task function's inference. Subclasses set ``name`` and ``Options``, and implement
    :meth:`load` and :meth:`predict_page` (and :meth:`combine` when pages are not simply listed)."""

    name: ClassVar[str]
    Options: ClassVar[type[TaskOptions]] = TaskOptions
    # The packs the task loads, by role: its own ("model") and any it shares with another task
    # (parse reads text with the "ocr" task's pack). Each role's pack comes from its own setting.
    pack_roles: ClassVar[tuple[str, ...]] = (OWN_PACK,)
    # Packs only some requests use (table's, parse's and summarize's VLM, role "vlm"): fetched and
    # loaded on the first request that needs one (:meth:`optional_roles_for`), so a function without
    # one still serves everything else, and the requests that need it get its 503 saying how to make one.
    optional_pack_roles: ClassVar[tuple[str, ...]] = ()
    # Its inference is the VLM's batching queue (vlm, formula, chart): the engine batches the requests
    # waiting together and serialises the forward passes itself, so the service admits these
    # requests by that queue's bound (DOCFN_VLM_MAX_QUEUE) and does not hold its single inference
    # slot around them, which would let one request at a time reach the engine and batch nothing.
    vlm_queued: ClassVar[bool] = False

    def __init__(self, threads: int = 0) -> None:
        self.threads = threads  # OCR's compute pool, other sessions' intra-op threads; 0 = the CPU quota

    @classmethod
    def from_settings(cls, settings: Settings) -> Task:
        """The task as the service hosts it; a task with settings of its own (the VLM's batching
        window, summarize's limits) reads them here."""
        return cls(settings.onnx_threads)

    def bind(self, bindings: Mapping[str, Any]) -> None:
        """Take the outside services the wiring bound by name (summarize's LLM endpoint writer): the
        task calls them through the task layer's own interfaces and never builds them itself."""
        return None

    def cache_identity(self, options: Any) -> dict[str, Any]:
        """What besides the options and packs shapes a result (an endpoint's model): enters the key."""
        return {}

    def cacheable(self, result: dict[str, Any]) -> bool:
        """Whether ``result`` may be served again (a fallback for a failing endpoint is not)."""
        return True

    @abstractmethod
    def load(self, packs: Mapping[str, LocalPack]) -> None:
        """Build the runtime objects (ONNX sessions) from verified local packs, keyed by role."""

    def warm_up(self) -> None:
        """Run the loaded sessions once on small synthetic inputs, so ONNX Runtime's first-run costs
        (buffer allocation, kernel set-up: ~0.2 s for OCR) are paid before any request. Only loads
        made ahead of requests call it (Lambda init, Knative start-up), off the request path."""
        return None

    def resolve_options(self, options: Any) -> Any:
        """``options`` with what the deployment decides filled in (its settings), before the cache key
        is made from them: a result depends on nothing the key does not hold."""
        return options

    def optional_roles_for(self, options: Any) -> tuple[str, ...]:
        """The optional packs a request with ``options`` uses (each then feeds its cache key)."""
        return ()

    def load_optional(self, role: str, pack: LocalPack) -> None:
        """Build the runtime of optional pack ``role`` (called once, after :meth:`load`)."""
        raise NotImplementedError(f"task {self.name} has no optional pack {role!r}")

    def apply_instruction(self, options: Any, instruction: str) -> Any:
        """``options`` with the reference client's free-text ``instruction`` as the VLM's prompt, for
        the requests a VLM pack answers (``instruction.with_prompt``); any other task raises
        :class:`~docfn.tasks.instruction.InstructionNotApplied` saying why."""
        raise InstructionNotApplied(
            f"not applied: {self.name} runs no VLM (its models take no prompt); send the image to"
            " /vlm to ask the VLM in your own words"
        )

    def needs_text_layer(self, options: Any) -> bool:
        """Whether a PDF page should be rendered with its text layer read for this request."""
        return False

    def check_options(self, options: Any) -> None:
        """Refuse (:class:`BadOptions`, 422) options the loaded packs cannot honour, instead of
        silently ignoring them while they still change the cache key. Called after :meth:`load`."""
        return None  # every option of the task's model is honoured by default

    @abstractmethod
    def predict_page(self, page: PageImage, options: Any) -> dict[str, Any]:
        """The result for one page. Must be thread-safe: the service may run pages concurrently."""

    def combine(self, pages: list[dict[str, Any]], options: Any) -> dict[str, Any]:
        """The request's result from its pages' results, in page order."""
        return {"pages": pages}


# A request's progress: (steps done, steps in all).
Progress = Callable[[int, int], None]


class TextTask(Task):
    """A task that reads text, not page pixels (summarize). A text input (plain, Markdown, JSON) comes
    as a :class:`TextInput`; an image or PDF is first turned into ``upstream``'s result in-process by
    the service (parse, cached under parse's own key) and comes as that result."""

    upstream: ClassVar[str] = "parse"
    # The role whose setting names the upstream task's own pack in this task's function (parse's
    # layout pack: DOCFN_LAYOUT_MODEL_URI, since DOCFN_MODEL_URI there is not parse's).
    upstream_own_role: ClassVar[str] = "layout"
    pack_roles = ()

    def predict_page(self, page: PageImage, options: Any) -> dict[str, Any]:
        raise NotImplementedError("a text task reads the upstream task's result, not pages")

    @abstractmethod
    def predict_text(
        self,
        given: TextInput | dict[str, Any],
        options: Any,
        *,
        progress: Progress | None = None,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """The result for a text input, or for ``upstream``'s result on a document."""
