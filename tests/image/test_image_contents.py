"""What is inside the built image: its size, no model files, and that what the Dockerfile strips
(docs/image.md) left every library the functions use working."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from docfn.tasks.registry import implemented_tasks
from docfn_testkit.containers import Container, ImageConfig, podman, strip_report
from docfn_testkit.paths import DEVSET

# The target for one function image as `podman image inspect` reports it (base included, model
# packs never in the image). Decimal megabytes, as podman prints sizes.
MAX_IMAGE_BYTES = 300 * 1000 * 1000
# Every task ships as an image, each with its own extra (functions/Dockerfile), so each is measured.
TASKS = tuple(implemented_tasks())

# Runs inside the image (network off, read-only root): decode every accepted input format and
# render a PDF, i.e. exercise the codecs and native libraries the strip steps touched.
CODECS = r"""
import io, sys
import numpy as np
import pypdfium2 as pdfium
from PIL import Image, features

page = Image.open("/devset/003.png"); page.load()
formats = {}
for fmt, kwargs in {"PNG": {}, "JPEG": {"quality": 90}, "TIFF": {"compression": "tiff_lzw"},
                    "WEBP": {"quality": 90}, "PDF": {"resolution": 150.0}}.items():
    buffer = io.BytesIO()
    page.convert("RGB").save(buffer, fmt, **kwargs)
    if fmt == "PDF":
        pdf = pdfium.PdfDocument(buffer.getvalue())
        image = pdf[0].render(scale=150 / 72).to_pil()
    else:
        image = Image.open(io.BytesIO(buffer.getvalue())); image.load()
    formats[fmt] = image.size
assert all(abs(w - page.size[0]) <= 2 and abs(h - page.size[1]) <= 2 for w, h in formats.values()), formats
array = np.asarray(page.convert("L"), dtype=np.float32)
assert float((array @ array.T).sum()) > 0  # BLAS
print("ok", sorted(formats), features.check("webp"), features.check("jpg"), features.check("libtiff"))
"""


@pytest.mark.parametrize("task", TASKS)
def test_image_size_within_target(task: str, image_for: Callable[[str], ImageConfig]) -> None:
    image = image_for(task)
    size, limit = image.size / 1e6, MAX_IMAGE_BYTES / 1e6
    assert image.size <= MAX_IMAGE_BYTES, (
        f"{image.tag} is {size:.1f} MB (podman image inspect), above {limit:.0f} MB"
    )


def test_no_model_files_and_no_build_tools_in_the_image(image_for: Callable[[str], ImageConfig]) -> None:
    image = image_for("ocr")
    script = (
        "find / -xdev \\( -name '*.onnx' -o -name '*.safetensors' -o -name '*.pt' \\) -print; "
        "for tool in gcc cc make pip pip3; do command -v $tool; done; "
        "/opt/venv/bin/python -c 'import importlib.util as u; "
        'print(*[m for m in ("torch", "transformers", "pip") if u.find_spec(m)])' + "'"
    )
    done = podman("run", "--rm", "--network", "none", "--entrypoint", "sh", image.tag, "-c", script)
    assert done.stdout.strip() == "", done.stdout


def test_entrypoint_and_cmd_resolve_in_the_shipped_image(image_for: Callable[[str], ImageConfig]) -> None:
    """The CMD names a callable the image can import, as a non-root user on a read-only root."""
    image = image_for("ocr")
    assert image.user and image.user.split(":")[0] not in ("0", "root")
    assert image.entrypoint[:3] == ["python", "-m", "awslambdaric"], image.entrypoint
    (handler,) = image.cmd
    module, _, attribute = handler.rpartition(".")
    probe = f"import importlib; assert callable(getattr(importlib.import_module({module!r}), {attribute!r}))"
    with Container(image.tag, entrypoint=["python", "-c", probe], network="none") as container:
        assert container.wait(timeout=60) == 0, container.logs()


def test_stripped_dependencies_still_work(image_for: Callable[[str], ImageConfig]) -> None:
    image = image_for("ocr")
    with Container(
        image.tag,
        entrypoint=["python", "-c", CODECS],
        network="none",
        volumes=[f"{DEVSET}:/devset:ro"],
    ) as container:
        code = container.wait(timeout=120)
        output = container.logs()
    assert code == 0, output
    assert output.startswith("ok") and "True True True" in output, output


def test_strip_report_is_in_the_image(image_for: Callable[[str], ImageConfig]) -> None:
    """The Dockerfile records what each strip step saved (docs/image.md reads it)."""
    rows = strip_report(image_for("ocr").tag)
    assert rows and all(saved >= 0 for _, saved in rows), rows


def test_sessions_are_sized_to_the_container_cpu_limit(image_for: Callable[[str], ImageConfig]) -> None:
    """A CPU limit set the way Knative sets it (a cgroup quota; v1 or v2, whichever this host has)
    is what the function sizes its ONNX Runtime thread pools to, not the host's CPU count."""
    probe = "from docfn.core.cpus import available_cpus; print(available_cpus())"
    done = podman(
        "run", "--rm", "--network", "none", "--cpus", "1", "--entrypoint", "python",
        image_for("ocr").tag, "-c", probe,
    )  # fmt: skip
    assert done.stdout.strip() == "1", done.stdout + done.stderr
