"""Which model pack a task uses, known without fetching anything (the identity feeds the cache key).

A pack is named by a URI, ``s3://BUCKET/models/NAME/VERSION`` or a local pack directory, from the
setting of its role: ``DOCFN_MODEL_URI`` for a task's own pack, ``DOCFN_<ROLE>_MODEL_URI`` for a
secondary one (``DOCFN_OCR_MODEL_URI``: the OCR pack parse reads text with; ``DOCFN_LAYOUT_MODEL_URI``:
the layout pack table finds tables with; ``DOCFN_TABLE_STRUCTURE_MODEL_URI``: SLANet for table and
parse; ``DOCFN_VLM_MODEL_URI``: the VLM pack of tasks that send blocks to it); unset, the role's
default pack in the local store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ConfigurationError
from .catalog import DEFAULT_PACKS, ROLE_PACKS, default_version

# The role of a task's own pack; other roles are named after the task whose default they share.
OWN_PACK = "model"


@dataclass(frozen=True)
class PackRef:
    """A pack's identity and where it comes from."""

    name: str
    version: str
    uri: str | None  # s3://… or a local path; None = the default recipe in the local store
    setting: str = "DOCFN_MODEL_URI"  # the variable that names it (error messages say which to set)

    @property
    def pack_id(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def scheme(self) -> str | None:
        """``s3`` for remote packs, None for a local directory or the default recipe."""
        if self.uri and "://" in self.uri:
            return self.uri.split("://", 1)[0]
        return None


def setting_for(role: str) -> str:
    return "DOCFN_MODEL_URI" if role == OWN_PACK else f"DOCFN_{role.upper()}_MODEL_URI"


def parse_pack_uri(uri: str, setting: str = "DOCFN_MODEL_URI") -> PackRef:
    if uri.startswith("s3://"):
        parts = uri[len("s3://") :].rstrip("/").split("/")
        if len(parts) < 4 or parts[1] != "models":
            raise ConfigurationError(f"{setting}={uri!r} must look like s3://BUCKET/models/NAME/VERSION")
        return PackRef(name=parts[-2], version=parts[-1], uri=uri, setting=setting)
    if "://" in uri:
        raise ConfigurationError(f"{setting}={uri!r}: packs come from s3:// URIs or local directories")
    path = Path(uri).expanduser()
    return PackRef(name=path.parent.name or path.name, version=path.name, uri=str(path), setting=setting)


def pack_ref_for(task: str, role: str, uri: str | None) -> PackRef:
    """The pack ``task`` uses in ``role``: the configured URI, else the default pack of the role."""
    setting = setting_for(role)
    if uri:
        return parse_pack_uri(uri, setting)
    name = DEFAULT_PACKS.get(task) if role == OWN_PACK else ROLE_PACKS.get(role, DEFAULT_PACKS.get(role))
    if name is None:
        raise ConfigurationError(f"task {task!r} has no default model pack; set {setting}")
    return PackRef(name=name, version=default_version(name), uri=None, setting=setting)
