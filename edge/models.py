"""Model files: the manifest in `models/manifest.json`, installing from packages, verifying.

Nothing is downloaded at run time: every weight ships inside a pip package, is copied into
`models/` by `models/install.py`, and is checked against its sha256 before the box starts.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from edge.protocol.errors import ModelError

MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: str
    package: str
    version: str
    package_file: str
    sha256: str
    licence: str
    used_for: str


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_manifest(models_dir: Path) -> list[ModelEntry]:

    manifest = models_dir / MANIFEST_NAME
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        return [ModelEntry(**m) for m in data["models"]]
    except OSError as e:
        raise ModelError(f"model manifest {manifest} cannot be read: {e.strerror or e}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise ModelError(f"model manifest {manifest} is malformed: {e}") from None


def verify_models(models_dir: Path) -> dict[str, Path]:
    """Check every model in the manifest; return name -> path, or raise ModelError naming the file."""
    paths: dict[str, Path] = {}
    for entry in load_manifest(models_dir):
        path = models_dir / entry.path
        if not path.is_file():
            raise ModelError(f"model '{entry.name}' is missing: {path} (install it with: python models/install.py)")
        actual = _sha256(path)
        if actual != entry.sha256:
            raise ModelError(
                f"model '{entry.name}' is corrupt: {path} has sha256 {actual[:12]}…, manifest says "
                f"{entry.sha256[:12]}… (reinstall it with: python models/install.py)"
            )
        paths[entry.name] = path
    return paths


def _package_bytes(entry: ModelEntry) -> bytes:
    """A model shipped as a file in the package, or as a bytes attribute (`module:ATTR`)."""
    if ":" in entry.package_file:
        module_name, attr = entry.package_file.split(":", 1)
        try:
            return bytes(getattr(importlib.import_module(module_name), attr))
        except (ImportError, AttributeError) as e:
            raise ModelError(f"{entry.package}=={entry.version} does not provide {entry.package_file}: {e}") from None
    source = _package_file(entry)
    if not source.is_file():
        raise ModelError(f"{entry.package}=={entry.version} does not contain {entry.package_file}")
    return source.read_bytes()


def _package_file(entry: ModelEntry) -> Path:
    top = entry.package_file.split("/", 1)[0]
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"package {entry.package}=={entry.version} (module {top}) is not installed")
    return Path(next(iter(spec.submodule_search_locations))).parent / entry.package_file


def install_models(models_dir: Path) -> list[str]:
    """Copy each model from its installed package into `models_dir`, then verify all of them."""
    report = []
    for entry in load_manifest(models_dir):
        target = models_dir / entry.path
        if target.is_file() and _sha256(target) == entry.sha256:
            report.append(f"ok        {entry.path}")
            continue
        data = _package_bytes(entry)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
        report.append(f"installed {entry.path} from {entry.package}=={entry.version}")
    verify_models(models_dir)
    return report
