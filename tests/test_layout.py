"""Two programs around one contract: the box (`edge`) never imports the centre, the contract
(`edge.protocol`) imports nothing of ours outside itself and few third-party packages, and the
centre imports of the box only the contract (pyproject.toml `[tool.importlinter]`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from centre.config import CentreConfig, EmbeddingConfig
from edge.config import GateboxConfig, RecognitionConfig
from edge.protocol.config_file import BOX_RECOGNITION_KEYS, BOX_SECTIONS, CENTRE_SECTIONS
from tests.conftest import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:  # import-linter depends on tomli there
    import tomli as tomllib

HEAVY = ("cv2", "dlib", "face_recognition", "onnxruntime")
PROTOCOL_THIRD_PARTY = {"pydantic", "numpy", "cryptography", "paho"}


@pytest.mark.slow  # runs lint-imports
def test_the_import_contracts_are_kept() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert lint_imports, "import-linter is a dev dependency: pip install -e '.[dev]'"
    result = subprocess.run([lint_imports], capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout, result.stdout


def test_the_centre_contract_forbids_every_box_module_but_the_protocol() -> None:
    """A box module added later is forbidden to the centre too (import-linter's `forbidden` contract
    lists modules; it cannot say `edge.*` but `edge.protocol`)."""
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (centre,) = [c for c in contracts if c["source_modules"] == ["centre"]]
    box = {f"edge.{p.stem}" for p in (REPO / "edge").iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert set(centre["forbidden_modules"]) == box - {"edge.__init__", "edge.protocol"}
    assert centre["ignore_imports"] == ["centre.embedding -> edge.enroll"]


def test_the_protocol_imports_only_pydantic_numpy_cryptography_and_paho() -> None:
    graph = grimp.build_graph("edge", "centre", include_external_packages=True)
    imported = set()
    for module in graph.find_descendants("edge.protocol"):
        imported |= {m.split(".")[0] for m in graph.find_modules_directly_imported_by(module)}
    third_party = imported - set(sys.stdlib_module_names) - {"__future__", "edge"}
    assert third_party == PROTOCOL_THIRD_PARTY
    assert not {m for m in imported if m.startswith("centre")}


@pytest.mark.slow  # a fresh interpreter per module
@pytest.mark.parametrize("module", ["centre.web", "centre.cli", "edge.protocol"])
def test_the_console_and_the_contract_load_no_vision_library(module: str) -> None:
    """The console (and the contract) start without dlib, OpenCV or onnxruntime; only building a
    face list (`centre.embedding`) loads them."""
    protocol = sorted(f"edge.protocol.{p.stem}" for p in (REPO / "edge" / "protocol").glob("[!_]*.py"))
    imports = "; ".join(f"import {m}" for m in [module, *(protocol if module == "edge.protocol" else [])])
    probe = f"import sys; {imports}; print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120,
                            check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"import {module} loaded {result.stdout.strip()}"


def test_a_shared_config_file_is_split_between_the_programs_by_section() -> None:
    """Each program leaves the other's sections of a shared file unread, knows the shared ones, and
    refuses anything else (`edge.protocol.config_file`)."""
    box, centre = set(GateboxConfig.model_fields), set(CentreConfig.model_fields)
    assert box - centre == BOX_SECTIONS
    assert centre - box | {"centre"} == CENTRE_SECTIONS
    assert box & centre == {"broker", "lists", "recognition", "models_dir", "logging"}
    assert CentreConfig.model_fields["recognition"].annotation is EmbeddingConfig
    embedding = set(EmbeddingConfig.model_fields)
    assert set(RecognitionConfig.model_fields) - embedding == BOX_RECOGNITION_KEYS
