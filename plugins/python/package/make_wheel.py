"""Makes the ``sluice-plugin`` wheel and the requirements a plugin project
installs it with (run by scripts/package-sdks):

    python3 make_wheel.py OUT_DIR
    -> OUT_DIR/sluice_plugin-<version>-py3-none-any.whl
       OUT_DIR/sluice_plugin-<version>-requirements.txt

The wheel holds the SDK (``../sdk/sluice_plugin``) and the build entry point
(``sluice_plugin_tools``, with ``wit/0.2.0`` from the repository's ``wit/``);
its metadata comes from ``pyproject.toml``. It is written here rather than by
a build backend because it is pure Python and must be made offline: with
fixed timestamps and sorted entries, the same inputs give the same bytes (so
the hash in the requirements only changes when the SDK does).

The requirements are what ``sluice plugin new --lang python`` copies into a
project as ``requirements.txt``: the wheel (as ``./vendor/<wheel>``, where
``new`` puts it) and every package of the toolchain, each pinned with its
hashes, taken from ``../requirements.txt`` (the repository's lock; the
packages only its own tests use are left out). pip installs them with
``--require-hashes``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
import tomllib
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SDK = HERE.parent / "sdk" / "sluice_plugin"
TOOLS = HERE / "sluice_plugin_tools"
WIT = HERE.parent.parent.parent / "wit" / "0.2.0"
LOCK = HERE.parent / "requirements.txt"
#: In the repository's lock for its own tests only (the end-to-end smoke test's host).
REPOSITORY_ONLY = {"wasmtime"}
#: 1980-01-01, the earliest time a zip entry can hold.
EPOCH = (1980, 1, 1, 0, 0, 0)


def files() -> list[tuple[str, bytes]]:
    """(name in the wheel, contents), sorted."""
    found = []
    for root, prefix in ((SDK, "sluice_plugin"), (TOOLS, "sluice_plugin_tools")):
        for path in root.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                found.append((f"{prefix}/{path.relative_to(root).as_posix()}", path.read_bytes()))
    for path in WIT.glob("*.wit"):
        found.append((f"sluice_plugin_tools/wit/0.2.0/{path.name}", path.read_bytes()))
    return sorted(found)


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def lock_entries() -> dict[str, str]:
    """The repository's lock, by normalised name: each entry's text (name==version and hashes)."""
    entries: dict[str, str] = {}
    text = LOCK.read_text()
    for block in re.split(r"\n(?=[A-Za-z])", text):
        match = re.match(r"([A-Za-z0-9_.-]+)==", block)
        if match:
            entries[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = block.strip()
    return entries


def main(out: Path) -> None:
    project = tomllib.loads((HERE / "pyproject.toml").read_text())["project"]
    name, version = project["name"], project["version"]
    dist = name.replace("-", "_")
    lock = lock_entries()
    for requirement in project["dependencies"]:
        pin = requirement.split("==")
        key = re.sub(r"[-_.]+", "-", pin[0]).lower()
        if len(pin) != 2 or not lock.get(key, "").startswith(f"{pin[0]}=={pin[1]} "):
            sys.exit(f"pyproject.toml pins {requirement}, which ../requirements.txt does not")

    metadata = "".join(
        [
            "Metadata-Version: 2.1\n",
            f"Name: {name}\n",
            f"Version: {version}\n",
            f"Summary: {project['description']}\n",
            f"License: {project['license']}\n",
            f"Requires-Python: {project['requires-python']}\n",
            *(f"Requires-Dist: {d}\n" for d in project["dependencies"]),
        ]
    ).encode()
    wheel_info = b"Wheel-Version: 1.0\nGenerator: sluice make_wheel.py\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    info = f"{dist}-{version}.dist-info"
    entries = [*files(), (f"{info}/METADATA", metadata), (f"{info}/WHEEL", wheel_info)]
    record = "".join(f"{n},{record_hash(d)},{len(d)}\n" for n, d in entries) + f"{info}/RECORD,,\n"
    entries.append((f"{info}/RECORD", record.encode()))

    out.mkdir(parents=True, exist_ok=True)
    wheel = out / f"{dist}-{version}-py3-none-any.whl"
    partial = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry, data in entries:
            item = zipfile.ZipInfo(entry, EPOCH)
            item.external_attr = 0o644 << 16
            item.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(item, data)
    partial.replace(wheel)

    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    toolchain = [text for key, text in sorted(lock.items()) if key not in REPOSITORY_ONLY]
    requirements = (
        f"# The plugin's toolchain: the Sluice plugin SDK {version} (vendored by\n"
        "# `sluice plugin new`) and what it builds and tests with, every file pinned\n"
        "# by hash. `sluice plugin build|test` install it into .venv with\n"
        "#   pip install --require-hashes --only-binary=:all: -r requirements.txt\n"
        "# (run from this directory: the wheel's path is relative to it).\n"
        f"./vendor/{wheel.name} \\\n    --hash=sha256:{digest}\n" + "\n".join(toolchain) + "\n"
    )
    (out / f"{dist}-{version}-requirements.txt").write_text(requirements)
    print(wheel)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python3 make_wheel.py OUT_DIR")
    main(Path(sys.argv[1]))
