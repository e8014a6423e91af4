"""The e2e stack's images, built locally and cached by a hash of their inputs.

Nothing can be pulled here, so every image starts from a Debian root made with
`debootstrap` and `docker import`. Each image is tagged by a content hash of what it is
made of (recipe, sources, package-lock.json, Dockerfile); an image whose tag exists is not
built again. The Docker image store outlives a CI checkout, so CI builds only what changed.
npm's cache lives outside the repository (`OPSMON_E2E_NPM_CACHE`).

`python -m tests.e2e.images` builds what is missing and prints one line per image
(`built`/`cached`, seconds); scripts/e2e-images.sh (called by scripts/test-env.sh) runs it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

STACK = Path(__file__).resolve().parent / "stack"
NPM_CACHE = Path(os.environ.get("OPSMON_E2E_NPM_CACHE", "/var/cache/opsmon-e2e/npm"))
# The backend's builds: one source, a different APP_VARIANT baked into each image.
BACKEND_VARIANTS = ("good", "bad", "newenv", "slow", "crash")
# Bumped when a base recipe below changes in a way the hash cannot see.
_BASE_RECIPES = {
    "node-base": ("bookworm", ("nodejs", "ca-certificates")),
    "pg-base": ("trixie", ("postgresql-17", "postgresql-17-pgvector")),
}


def _digest(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()[:12]


def _tree_bytes(root: Path, skip: tuple[str, ...] = ()) -> Iterable[bytes]:
    """Relative path and content of every file under root, in a stable order."""
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not path.is_file() or any(rel == s or rel.startswith(s + "/") for s in skip):
            continue
        yield rel.encode()
        yield path.read_bytes()


def base_tag(name: str) -> str:
    """The tag of a debootstrapped base image, by its recipe."""
    suite, packages = _BASE_RECIPES[name]
    return f"local/e2e-{name}:{suite}-" + _digest([suite.encode(), *(p.encode() for p in packages)])


_APP_SKIP = ("node_modules", ".next", "next-env.d.ts")


def _app_hash(kind: str, base: str) -> str:
    return _digest([base.encode(), *_tree_bytes(STACK / kind, _APP_SKIP)])


def db_tag() -> str:
    """Tag of the PostgreSQL + pgvector image."""
    return "local/e2e-db:" + _app_hash("db", base_tag("pg-base"))


def frontend_tag() -> str:
    """Tag (the part after the colon) of the Next.js frontend image."""
    return _app_hash("frontend", base_tag("node-base"))


def backend_tag(variant: str) -> str:
    """Tag (the part after the colon) of one backend variant: what CI_COMMIT_SHA names."""
    return f"{variant}-" + _app_hash("backend", base_tag("node-base"))


@dataclass(frozen=True)
class Images:
    """Full image references of the stack."""

    db: str
    frontend: str
    backend: dict[str, str]

    def all(self) -> list[str]:
        """Every image reference."""
        return [self.db, self.frontend, *self.backend.values()]


def images() -> Images:
    """The image references the current sources call for (built or not)."""
    return Images(
        db=db_tag(),
        frontend="local/e2e-frontend:" + frontend_tag(),
        backend={v: "local/e2e-backend:" + backend_tag(v) for v in BACKEND_VARIANTS},
    )


def image_exists(ref: str) -> bool:
    """Whether the engine has an image with this reference."""
    done = subprocess.run(
        ["docker", "image", "inspect", ref], capture_output=True, check=False, timeout=30
    )
    return done.returncode == 0


def missing_images() -> list[str]:
    """Images the current sources call for that the engine does not have."""
    return [ref for ref in images().all() if not image_exists(ref)]


def _run(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=1800
    )
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-4000:]
        raise RuntimeError(f"{' '.join(argv)} failed (exit {done.returncode}):\n{tail}")


def debian_mirror() -> str:
    """This machine's Debian mirror, read from its apt sources (never written into the repo)."""
    deb822 = Path("/etc/apt/sources.list.d/debian.sources")
    if deb822.exists():
        for line in deb822.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and "security" not in parts[1]:
                return parts[1]
    raise RuntimeError("no Debian mirror found in /etc/apt/sources.list.d/debian.sources")


def _build_base(name: str) -> None:
    suite, packages = _BASE_RECIPES[name]
    root = Path(tempfile.mkdtemp(prefix=f"opsmon-e2e-{name}-"))
    try:
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=" + ",".join(packages),
                suite,
                str(root),
                debian_mirror(),
            ]
        )
        # Apt caches and lists are dead weight in an image.
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            shutil.rmtree(root / junk, ignore_errors=True)
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        _run_stdin(["docker", "import", "-", base_tag(name)], tar)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run_stdin(argv: list[str], producer: subprocess.Popen[bytes]) -> None:
    done = subprocess.run(argv, stdin=producer.stdout, capture_output=True, check=False)
    producer.wait()
    if done.returncode != 0 or producer.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.decode()[-2000:]}")


def _npm(app: Path, *args: str) -> None:
    NPM_CACHE.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "npm_config_cache": str(NPM_CACHE), "NEXT_TELEMETRY_DISABLED": "1"}
    _run(["npm", *args, "--no-audit", "--no-fund"], cwd=app, env=env)


def _docker_build(context: Path, tag: str, args: dict[str, str]) -> None:
    argv = ["docker", "build", "-q", "-t", tag]
    for key, value in args.items():
        argv += ["--build-arg", f"{key}={value}"]
    _run([*argv, str(context)])


def _build_db() -> None:
    _docker_build(STACK / "db", db_tag(), {"BASE": base_tag("pg-base")})


def _build_frontend() -> None:
    app = STACK / "frontend"
    _npm(app, "ci")
    env = {**os.environ, "NEXT_TELEMETRY_DISABLED": "1"}
    _run(["npx", "--no-install", "next", "build"], cwd=app, env=env)
    _docker_build(app, images().frontend, {"BASE": base_tag("node-base")})


def _build_backend(variant: str) -> Callable[[], None]:
    def build() -> None:
        app = STACK / "backend"
        if not (app / "node_modules").is_dir():
            _npm(app, "ci", "--omit=dev")
        _docker_build(
            app,
            images().backend[variant],
            {"BASE": base_tag("node-base"), "APP_VARIANT": variant},
        )

    return build


def plan() -> list[tuple[str, Callable[[], None]]]:
    """Every image in build order (bases first), with how to build it."""
    refs = images()
    steps: list[tuple[str, Callable[[], None]]] = [
        (base_tag("node-base"), lambda: _build_base("node-base")),
        (base_tag("pg-base"), lambda: _build_base("pg-base")),
        (refs.db, _build_db),
        (refs.frontend, _build_frontend),
    ]
    steps += [(refs.backend[v], _build_backend(v)) for v in BACKEND_VARIANTS]
    return steps


def ensure(out: Callable[[str], None] = print) -> None:
    """Build every missing image; print one line per image: built or cached, seconds."""
    for ref, build in plan():
        start = time.monotonic()
        if image_exists(ref):
            out(f"e2e-images: {ref:58} cached ({time.monotonic() - start:.1f}s)")
            continue
        build()
        out(f"e2e-images: {ref:58} built  ({time.monotonic() - start:.1f}s)")


def main() -> int:
    """Build what is missing; exit 1 with the failing step's output if a build fails."""
    try:
        ensure()
    except RuntimeError as exc:
        print(f"e2e-images: FAIL: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
