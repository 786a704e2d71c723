"""Build the benchmark image from ``container/Dockerfile`` through the Docker SDK."""

from __future__ import annotations

import tarfile
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

import docker
from docker.errors import APIError, BuildError

from energy_bench import contract
from orchestrator.errors import RunnerError

# The build context is the benchmark's source folder (container/ of the project's tree).
CONTAINER_DIR = Path(contract.__file__).resolve().parent.parent
SKIP = ("__pycache__", ".pytest_cache")


class ImageBuildError(RunnerError):
    """The image did not build; carries the last lines of the build log."""


def _context(extra_ca: Sequence[Path], wheels: Sequence[Path], into: IO[bytes]) -> None:
    with tarfile.open(fileobj=into, mode="w") as tar:

        def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
            return None if any(part in SKIP for part in Path(info.name).parts) else info

        for path in sorted(CONTAINER_DIR.iterdir()):
            if path.name not in SKIP:
                tar.add(path, arcname=path.name, filter=keep)
        for folder in ("extra", "extra/ca", "extra/wheels"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for i, cert in enumerate(extra_ca):
            tar.add(cert, arcname=f"extra/ca/extra-{i}.crt")
        for wheel in wheels:
            tar.add(wheel, arcname=f"extra/wheels/{wheel.name}")
    into.seek(0)


def build_image(
    *,
    tag: str = contract.DEFAULT_IMAGE,
    base_image: str | None = None,
    extra_ca: Sequence[Path] = (),
    wheels: Sequence[Path] = (),
    echo: Callable[[str], None] = print,
) -> str:
    """Build the image and return its tag; the build log goes to ``echo`` as it comes."""
    if not (CONTAINER_DIR / "Dockerfile").is_file():
        raise ImageBuildError(
            f"{CONTAINER_DIR}: no Dockerfile (build from the project's source tree)"
        )
    for path in (*extra_ca, *wheels):
        if not path.is_file():
            raise ImageBuildError(f"{path}: no such file")
    client = docker.from_env(timeout=600)
    args = {"IMAGE_TAG": tag}
    if base_image:
        args["BASE_IMAGE"] = base_image
    lines: list[str] = []
    with tempfile.SpooledTemporaryFile(max_size=64 * 2**20) as context:
        _context(extra_ca, wheels, context)
        try:
            for chunk in client.api.build(
                fileobj=context,
                custom_context=True,
                tag=tag,
                buildargs=args,
                rm=True,
                forcerm=True,
                decode=True,
            ):
                if "error" in chunk:
                    tail = "\n".join(lines[-15:])
                    raise ImageBuildError(f"image build failed: {chunk['error'].strip()}\n{tail}")
                text = chunk.get("stream", "").rstrip()
                if text:
                    lines.append(text)
                    echo(text)
        except (APIError, BuildError) as exc:
            raise ImageBuildError(f"image build failed: {exc}") from exc
        finally:
            client.close()
    return tag


def image_exists(tag: str) -> bool:
    """True when the local engine has an image with this tag."""
    client = docker.from_env()
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False
    finally:
        client.close()
