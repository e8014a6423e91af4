"""Images for building opsmon's Dockerfile where no registry can be reached.

The Dockerfile's default base (an official slim Python image) cannot be pulled here, so a local
one is made: a minimal Debian with python3 by debootstrap, imported with `docker import`, and kept
between runs. The Python dependencies are built as wheels on the host and installed in the image
with --no-index, so the build itself needs no network.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

BASE_IMAGE = "local/python:3.11-bookworm"
DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")


def _build_requirements() -> list[str]:
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    requires: list[str] = tomllib.loads(pyproject.read_text())["build-system"]["requires"]
    return requires


BUILD_REQUIREMENTS = _build_requirements()


def docker(
    *args: str, timeout: float = 300, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI; with `check`, fail with its output on a non-zero exit."""
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {result.stdout}\n{result.stderr}")
    return result


def image_exists(tag: str) -> bool:
    """Whether the engine has an image with this tag."""
    return docker("image", "inspect", tag, check=False).returncode == 0


def debian_mirror() -> str:
    """This machine's Debian mirror, read from its apt sources (never written into the project)."""
    for line in DEBIAN_SOURCES.read_text().splitlines():
        if line.startswith("URIs:"):
            return line.split()[1]
    raise AssertionError(f"no URIs: line in {DEBIAN_SOURCES}")


def ensure_python_base_image(tag: str = BASE_IMAGE) -> str:
    """A local Debian bookworm image with python3 and venv: made once (about a minute), kept."""
    if image_exists(tag):
        return tag
    with tempfile.TemporaryDirectory(prefix="opsmon-rootfs-") as root:
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv",
                "bookworm",
                root,
                debian_mirror(),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        # Shrink what is imported: package lists and docs are not needed to run Python.
        for folder in ("var/lib/apt/lists", "var/cache/apt", "usr/share/doc", "usr/share/man"):
            shutil.rmtree(Path(root, folder), ignore_errors=True)
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            [
                "docker",
                "import",
                "-c",
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "-c",
                'CMD ["python3"]',
                "-",
                tag,
            ],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert tar.stdout is not None
        tar.stdout.close()
        tar.wait()
        assert imported.returncode == 0, imported.stderr
    return tag


def _pip_wheel(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def build_wheelhouse(project: Path, wheelhouse: Path) -> None:
    """Wheels of the project, its dependencies and its build backend, built with the test's pip.

    The dependencies' wheels are kept between runs (keyed by pyproject.toml's requirements), so
    a second run only builds the project's own wheel, offline from that cache.
    """
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    requirements = [*pyproject["project"]["dependencies"], *BUILD_REQUIREMENTS]
    key = hashlib.sha256("\n".join(sorted(requirements)).encode()).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / f"opsmon-wheels-{key}"
    if not (cache / ".complete").exists():
        shutil.rmtree(cache, ignore_errors=True)
        _pip_wheel("--wheel-dir", str(cache), *requirements)
        (cache / ".complete").touch()
    shutil.rmtree(wheelhouse, ignore_errors=True)
    shutil.copytree(cache, wheelhouse, ignore=shutil.ignore_patterns(".complete"))
    _pip_wheel(
        "--no-deps", "--no-index", "--find-links", str(cache), "-w", str(wheelhouse), str(project)
    )
