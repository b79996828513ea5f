"""The README stays true: its commands are the ones CI runs, and every CLI
option is documented."""

import re

import click

from conftest import REPO
from skinseg.cli import main


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    command = ci.strip().splitlines()[-1]
    assert "pytest" in command
    assert command in (REPO / "README.md").read_text()


def commands(group: click.Group, prefix: str = "skinseg") -> dict[str, click.Command]:
    """Every command below group, by its full name ("skinseg models fetch")."""
    found = {prefix: group}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.update(commands(command, f"{prefix} {name}"))
        else:
            found[f"{prefix} {name}"] = command
    return found


def test_every_option_is_in_the_readme():
    readme = (REPO / "README.md").read_text()
    every = commands(main)
    assert {"skinseg build", "skinseg models fetch", "skinseg models check", "skinseg models where"} <= set(every)
    for name, command in every.items():
        assert f"`{name}" in readme, f"the command {name} is not documented in README.md"
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--"):
                    assert re.search(re.escape(opt) + r"\b", readme), f"{name} {opt} is not documented in README.md"


def test_demo_images_exist():
    for name in ("original.jpg", "skin_only.jpg", "training_mask.png", "preview.png"):
        assert (REPO / "demo_images" / name).is_file()
