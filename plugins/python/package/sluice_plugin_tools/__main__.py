"""``python -m sluice_plugin_tools build DIR [OUT]``: see the package's docstring."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from importlib import metadata
from pathlib import Path

import sluice_plugin

#: Bump when the componentize-py command line or the staging below changes.
RECIPE = "componentize-py -d WIT -w WORLD componentize MODULE -p APP -p SDK; empty VIRTUAL_ENV; wheel v1"
WIT = Path(__file__).parent / "wit" / "0.2.0"
COMPONENT_HEADER = bytes([0x00, 0x61, 0x73, 0x6D, 0x0D, 0x00, 0x01, 0x00])
EXPORTS = {"validator": "sluice:plugin/validate@0.2.0", "enricher": "sluice:plugin/enrich@0.2.0"}
OTHER = {"validator": "sluice:plugin/enrich@", "enricher": "sluice:plugin/validate@"}
CACHE_DAYS = 30


class BuildError(Exception):
    """A problem with the plugin, reported without a traceback."""


def _ignored(directory: str, names: list[str], top: str) -> set[str]:
    """What is not part of the component: tests, bytecode, the build's own
    files; at the top, hidden entries (.venv, .git, caches), dist/ and vendor/."""
    skip = {
        n
        for n in names
        if n == "__pycache__"
        or n.endswith(".pyc")
        or (n.startswith("test_") and n.endswith(".py"))
        or n.endswith("_test.py")
        or n in ("conftest.py", "sluice.toml", "requirements.txt")
    }
    if os.path.samefile(directory, top):
        skip |= {n for n in names if n.startswith(".") or n in ("dist", "vendor")}
    return skip


def _tree_hash(root: Path, digest: hashlib._Hash) -> None:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = path.relative_to(root).as_posix().encode()
        data = path.read_bytes()
        digest.update(b"%d:%s%d:" % (len(name), name, len(data)))
        digest.update(data)


def build(plugin: Path, out: Path) -> Path:
    manifest = plugin / "sluice.toml"
    if not manifest.is_file():
        raise BuildError(f'{plugin} has no sluice.toml (world = "validator" or "enricher")')
    world = tomllib.loads(manifest.read_text()).get("world")
    if world not in EXPORTS:
        raise BuildError(f'{manifest}: world must be "validator" or "enricher", not {world!r}')
    module = plugin.name.replace("-", "_")
    if not (plugin / f"{module}.py").is_file():
        raise BuildError(f"{plugin} has no {module}.py (the app module is named after the directory)")

    cache = Path(os.environ.get("SLUICE_CACHE") or Path.home() / ".cache" / "sluice") / "plugins-py-cache"
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sluice-componentize-") as scratch_name:
        scratch = Path(scratch_name)
        app = scratch / "app" / plugin.name
        shutil.copytree(plugin, app, ignore=lambda d, n: _ignored(d, n, str(plugin)))
        sdk_root = Path(sluice_plugin.__file__).parent
        sdk = scratch / "sdk"
        shutil.copytree(sdk_root, sdk / "sluice_plugin", ignore=lambda d, n: _ignored(d, n, str(sdk_root)))
        empty_venv = scratch / "empty-venv"
        (empty_venv / "lib" / "python3" / "site-packages").mkdir(parents=True)

        digest = hashlib.sha256()
        for part in (RECIPE, world, module, metadata.version("componentize-py")):
            digest.update(b"%d:%s" % (len(part), part.encode()))
        for tree in (app, sdk, WIT):
            _tree_hash(tree, digest)
        cached = cache / f"{digest.hexdigest()}.wasm"

        if not cached.is_file():
            componentize = Path(sys.executable).parent / "componentize-py"
            target = scratch / f"{module}.wasm"
            # componentize-py writes bytecode into -p directories: the cache
            # key was taken before, from the clean copies.
            done = subprocess.run(
                [str(componentize), "-q", "-d", str(WIT), "-w", world, "componentize", module,
                 "-p", str(app), "-p", str(sdk), "-o", str(target)],
                env={**os.environ, "VIRTUAL_ENV": str(empty_venv)},
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                # The Python error, not componentize-py's Rust frames.
                sys.stderr.write((done.stdout + done.stderr).split("Stack backtrace:")[0])
                raise BuildError(f"componentize-py failed for {plugin}")
            partial = cached.with_suffix(f".{os.getpid()}.tmp")
            shutil.move(target, partial)
            partial.replace(cached)
        os.utime(cached)  # last used, for pruning

    wasm = cached.read_bytes()
    problem = None
    if wasm[:8] != COMPONENT_HEADER:
        problem = f"not a component (header {wasm[:8].hex()})"
    elif EXPORTS[world].encode() not in wasm:
        problem = f"does not export {EXPORTS[world]}"
    elif OTHER[world].encode() in wasm:
        problem = f"also names {OTHER[world]} (wrong world?)"
    if problem:
        cached.unlink(missing_ok=True)
        raise BuildError(f"{module}.wasm: {problem}")

    for old in cache.glob("*.wasm"):
        try:
            if time.time() - old.stat().st_mtime > CACHE_DAYS * 86400:
                old.unlink()
        except FileNotFoundError:
            pass  # another build pruned it first

    out.mkdir(parents=True, exist_ok=True)
    component = out / f"{module}.wasm"
    partial = component.with_suffix(".wasm.tmp")
    shutil.copyfile(cached, partial)
    partial.replace(component)  # a reader never sees half a component
    return component


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or argv[0] != "build":
        print("usage: python -m sluice_plugin_tools build DIR [OUT]", file=sys.stderr)
        return 2
    plugin = Path(argv[1]).resolve()
    out = Path(argv[2]).resolve() if len(argv) == 3 else plugin / "dist"
    try:
        print(build(plugin, out))
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
