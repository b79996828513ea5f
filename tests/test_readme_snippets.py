"""The README's Python snippets run: each block marked <!-- test: ... --> runs as a script in
a folder holding `examples` and, when the marker asks, `dataset` built from the bundled
example with that layout.  Snippets that need torch or `datasets` skip without them."""

import importlib.util
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO, run_cli

MARKED = re.compile(r"<!-- test: ([^>]*)-->\s*```python\n(.*?)```", re.S)


def snippets() -> list[tuple[str, dict, str]]:
    found = []
    for index, (marker, code) in enumerate(MARKED.findall((REPO / "README.md").read_text())):
        options = dict(part.split("=", 1) for part in marker.split())
        found.append((f"{index}-{options.get('dataset')}-{options.get('needs', 'numpy')}", options, code))
    return found


def test_the_readme_has_the_snippets():
    kinds = {(o.get("dataset"), o.get("needs")) for _, o, _ in snippets()}
    assert {("original", "torch"), ("train-ready", "torch"), ("train-ready", "datasets"), ("none", None)} <= kinds


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One folder per layout, each with `dataset` built from the example (built once)."""
    folders = {}

    def get(layout: str):
        if layout not in folders:
            folder = tmp_path_factory.mktemp(f"snippets-{layout}")
            (folder / "examples").symlink_to(REPO / "examples")
            if layout != "none":
                run_cli("--src", REPO / "examples" / "dataset_original", "--dst", folder / "dataset",
                        "--workers", "1", "--quiet", "--layout", layout)
            folders[layout] = folder
        return folders[layout]
    return get


@pytest.mark.parametrize("name, options, code", snippets(), ids=[s[0] for s in snippets()])
def test_snippet_runs(name, options, code, built, tmp_path):
    for module in filter(None, options.get("needs", "").split(",")):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (the README's {module} snippets run where it is)")
    folder = built(options["dataset"])
    script = tmp_path / "snippet.py"
    script.write_text(code)
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1",
               HF_HOME=str(tmp_path / "hf-home"), SKINSEG_OFFLINE="1")
    proc = subprocess.run([sys.executable, str(script)], cwd=folder, capture_output=True, text=True, timeout=300,
                          env=env)
    assert proc.returncode == 0, f"README snippet failed:\n{code}\n{proc.stderr[-3000:]}"
