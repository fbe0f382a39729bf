"""The package's architecture: the layer contract (import-linter) and the lazy top-level import."""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
LINT_IMPORTS = (shutil.which("lint-imports", path=os.path.dirname(sys.executable))
                or shutil.which("lint-imports"))


@pytest.mark.skipif(LINT_IMPORTS is None,
                    reason="lint-imports is not installed (pip install -e '.[test]' brings import-linter)")
def test_layers_contract_is_kept():
    """pyproject.toml [tool.importlinter]: app > dist > pipeline > engine | temporal | io | store >
    core > config > errors. A wrong-way import (e.g. engine -> io, config -> engine) fails here."""
    proc = subprocess.run([LINT_IMPORTS, "--no-cache", "--no-logo"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " 0 broken" in proc.stdout


@pytest.mark.skipif(LINT_IMPORTS is None, reason="lint-imports is not installed")
def test_layers_contract_catches_a_wrong_way_import(tmp_path):
    """The contract is wired to the real package names: a copy of the package with config importing
    the engine (an arrow pointing up) breaks it, naming the import."""
    shutil.copytree(os.path.join(ROOT, "dreamvid"), tmp_path / "dreamvid",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(ROOT, "pyproject.toml"), tmp_path / "pyproject.toml")
    with open(tmp_path / "dreamvid" / "config" / "presets.py", "a") as f:
        f.write("\nfrom ..engine import objectives  # wrong way\n")
    proc = subprocess.run([LINT_IMPORTS, "--no-cache", "--no-logo"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "dreamvid.config is not allowed to import dreamvid.engine" in proc.stdout
    assert "dreamvid.config.presets -> dreamvid.engine.objectives" in proc.stdout


@pytest.mark.parametrize("module", ["dreamvid", "dreamvid.__main__", "dreamvid.errors", "dreamvid.config.settings",
                                    "dreamvid.config.presets"])
def test_import_does_not_load_torch(module):
    """`import dreamvid` is lazy (names load on first use), so `python -m dreamvid` answers Ctrl-C
    and --help before torch loads, and settings and errors are usable without it."""
    code = (f"import sys, {module}; heavy = sorted(m for m in ('torch', 'torchvision', 'cv2') if m in sys.modules); "
            "print(','.join(heavy))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"importing {module} loaded {proc.stdout.strip()}"
