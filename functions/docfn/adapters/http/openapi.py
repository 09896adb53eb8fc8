"""OpenAPI for the task routes: each task's options model as query parameters, the input as a body.

The options are validated by the service (the same way on every entry point), not by FastAPI; this
only documents them, straight from the pydantic models.
"""

from __future__ import annotations

from typing import Any

from ...core.documents import MEDIA_TYPES
from ...tasks.contract import TaskOptions
from .body import FILE_FIELDS, INSTRUCTION_FIELD


def task_operation(options: type[TaskOptions], *, text: bool = False) -> dict[str, Any]:
    """``text``: the task also reads text bodies (plain, Markdown, JSON ``{"text": ...}``)."""
    schema = options.model_json_schema()
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        described = {k: v for k, v in prop.items() if k != "title"}
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": name in schema.get("required", []),
                "description": described.pop("description", ""),
                "schema": described,
            }
        )
    binary = {"schema": {"type": "string", "format": "binary"}}
    content: dict[str, Any] = {media: binary for media in MEDIA_TYPES.values()}
    if text:
        content["text/plain"] = content["text/markdown"] = {"schema": {"type": "string"}}
        content["application/json"] = {
            "schema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
        }
    form: dict[str, Any] = {
        name: {
            "type": "string",
            "format": "binary",
            "description": "the input (one part, any of these names)",
        }
        for name in FILE_FIELDS
    }
    form[INSTRUCTION_FIELD] = {
        "type": "string",
        "description": "free-text prompt: the VLM's where a VLM pack answers (vlm, formula, chart,"
        " table with recognizer=vlm); elsewhere accepted, and the answer's instruction says why it was"
        " not applied",
    }
    content["multipart/form-data"] = {"schema": {"type": "object", "properties": form}}
    return {"parameters": parameters, "requestBody": {"required": True, "content": content}}
