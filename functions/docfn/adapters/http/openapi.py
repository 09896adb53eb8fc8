"""OpenAPI for the task routes: each task's options model as query parameters, the input as a body.

The options are validated by the service (the same way on every entry point), not by FastAPI; this
only documents them, straight from the pydantic models.
"""

from __future__ import annotations

from typing import Any

from ...core.documents import MEDIA_TYPES
from ...tasks.contract import TaskOptions


def task_operation(options: type[TaskOptions]) -> dict[str, Any]:
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
    content["multipart/form-data"] = {
        "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
    }
    return {"parameters": parameters, "requestBody": {"required": True, "content": content}}
