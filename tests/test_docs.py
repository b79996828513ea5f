"""The README stays true: its commands are the ones CI runs, and every CLI
option is documented."""

import re

from conftest import REPO
from skinseg.cli import main


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    command = ci.strip().splitlines()[-1]
    assert "pytest" in command
    assert command in (REPO / "README.md").read_text()


def test_every_option_is_in_the_readme():
    readme = (REPO / "README.md").read_text()
    for param in main.params:
        for opt in param.opts:
            if opt.startswith("--"):
                assert re.search(re.escape(opt) + r"\b", readme), f"{opt} is not documented in README.md"


def test_demo_images_exist():
    for name in ("original.jpg", "skin_only.jpg", "training_mask.png", "preview.png"):
        assert (REPO / "demo_images" / name).is_file()
