"""The README's set-up installs the project itself (issue 21): its snippets
run from a script anywhere, not only from the checkout, and the `skinseg`
command exists.  The package's metadata is checked everywhere; the installed
package where the README's command installed it (a fresh clone, .ci/run)."""

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_readme_snippets import snippets

import skinseg
from conftest import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:
    tomllib = pytest.importorskip("tomli", reason="Python 3.10 reads pyproject.toml with tomli")


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def requirement_lines(name: str) -> list[str]:
    lines = [line.strip() for line in (REPO / name).read_text().splitlines()]
    return [line for line in lines if line and not line.startswith(("#", "-r "))]


def test_the_readme_installs_the_project_in_one_command_each():
    readme = (REPO / "README.md").read_text()
    build = "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/python build_dataset.py"
    test = 'python3 -m venv .venv && .venv/bin/pip install -q -e ".[dev]" && .venv/bin/python -m pytest -q'
    assert build in readme and test in readme
    assert (REPO / ".ci" / "run").read_text().strip().splitlines()[-1] == test


def test_the_requirement_files_list_what_pyproject_installs():
    project = pyproject()["project"]
    assert requirement_lines("requirements.txt") == project["dependencies"]
    assert requirement_lines("requirements-dev.txt") == project["optional-dependencies"]["dev"]
    assert "-r requirements.txt" in (REPO / "requirements-dev.txt").read_text()


def test_the_metadata_installs_every_module_and_the_command():
    data = pyproject()
    assert data["tool"]["setuptools"]["packages"] == ["skinseg"]
    assert not [p for p in (REPO / "skinseg").rglob("*.py") if p.parent != REPO / "skinseg"]    # no sub-package
    module, function = data["project"]["scripts"]["skinseg"].split(":")
    assert callable(getattr(__import__(module, fromlist=[function]), function))
    assert data["tool"]["setuptools"]["dynamic"]["version"]["attr"] == "skinseg.__version__"
    assert data["project"]["requires-python"] == ">=3.10"


def test_the_tests_import_this_checkout():
    """Also where an installed copy is on the path: the code under test is this one."""
    assert Path(skinseg.__file__).resolve().parent == REPO / "skinseg"


def installed() -> dict:
    """How pip installed skinseg here (its direct_url.json); skips where it is
    not installed.  (The skinseg.egg-info an editable install leaves in the
    checkout is metadata too, found first from the checkout: not pip's.)"""
    for dist in importlib.metadata.distributions(name="skinseg"):
        direct = dist.read_text("direct_url.json")
        if direct:
            return json.loads(direct)
    pytest.skip("skinseg is not installed in this environment (the README's set-up installs it: pip install -e .)")


def test_an_installed_skinseg_runs_a_readme_snippet_from_anywhere(tmp_path):
    """The snippets failed with ModuleNotFoundError outside the checkout: the
    set-up installed the requirements, not the project."""
    direct = installed()
    assert direct.get("dir_info", {}).get("editable") and direct["url"] == REPO.as_uri(), direct
    code = next(code for name, options, code in snippets() if options.get("dataset") == "none"
                and "Segmenter" in code)
    (tmp_path / "examples").symlink_to(REPO / "examples")
    (tmp_path / "snippet.py").write_text(code)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "snippet.py"], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    command = Path(sys.executable).parent / "skinseg"
    proc = subprocess.run([str(command), "--version"], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0 and f"version {skinseg.__version__}" in proc.stdout, proc.stderr
