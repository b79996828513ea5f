"""docs/architecture.md is the code's picture, and stays it: its module table
lists every module, and what its last column says a module knows nothing
about is true of the module's imports (issue 20)."""

import ast
import importlib
import re
from pathlib import Path

import pytest

from conftest import REPO

DOC = REPO / "docs" / "architecture.md"
PACKAGE = REPO / "skinseg"
NOT_IN_TABLE = {"__init__", "__main__"}


def _rows(heading: str) -> list[list[str]]:
    """The cells of the table under a '## heading' of the doc (header and rule excluded)."""
    text = DOC.read_text()
    section = text[text.index(f"## {heading}\n"):]
    section = section[:section.find("\n## ", 1)] if "\n## " in section[1:] else section
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    # Split on | not escaped as \|.
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows[2:]]


def _names(cell: str) -> set[str]:
    return set(re.findall(r"`([\w.]+)`", cell))


def knows_nothing_about() -> dict[str, set[str]]:
    """Module -> the words of its last column."""
    return {cell[0].strip("`").removesuffix(".py"): {w.strip() for w in cell[2].split(",") if w.strip()}
            for cell in _rows("Modules")}


def vocabulary() -> dict[str, set[str]]:
    """Word -> the modules and packages it stands for."""
    return {cell[0]: _names(cell[1]) for cell in _rows("What the last column means")}


def imports(path: Path) -> set[str]:
    """The skinseg modules and the top-level packages a module imports,
    anywhere in it (a function's lazy import counts), but for type hints
    (an `if TYPE_CHECKING:` block)."""
    tree = ast.parse(path.read_text())
    hints = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
             and getattr(block.test, "id", None) == "TYPE_CHECKING" for node in ast.walk(block)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in hints:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
    return found - {"__version__"}


MODULES = sorted(p.stem for p in PACKAGE.glob("*.py"))


def test_the_table_lists_every_module_and_every_word_is_defined():
    table, words = knows_nothing_about(), vocabulary()
    assert set(table) == set(MODULES) - NOT_IN_TABLE
    undefined = {(module, word) for module, used in table.items() for word in used if word not in words}
    assert not undefined, f"words the doc does not define: {sorted(undefined)}"
    for word, names in words.items():
        assert names, word
        assert names <= set(MODULES) | {"cv2", "numpy", "PIL", "mediapipe", "click"}, (word, names)


@pytest.mark.parametrize("module", sorted(set(MODULES) - NOT_IN_TABLE))
def test_a_module_imports_nothing_its_row_says_it_knows_nothing_about(module):
    said, words = knows_nothing_about()[module], vocabulary()
    imported = imports(PACKAGE / f"{module}.py")
    for word in said:
        assert module not in words[word], f"{module}.py claims to know nothing about {word}, which it is part of"
        wrong = imported & words[word]
        assert not wrong, f"{module}.py knows nothing about {word} (docs/architecture.md) but imports {sorted(wrong)}"


def test_there_are_no_import_cycles_at_module_level():
    """Imports at module level (not inside functions, not for type hints) form no cycle."""
    edges = {}
    for module in MODULES:
        tree = ast.parse((PACKAGE / f"{module}.py").read_text())
        edges[module] = {(n.module.split(".")[0] if n.module else a.name) for n in tree.body
                         if isinstance(n, ast.ImportFrom) and n.level == 1 for a in n.names} & set(MODULES)
    state: dict[str, int] = {}

    def visit(module, path):
        if state.get(module) == 1:
            raise AssertionError(f"import cycle: {' -> '.join(path + [module])}")
        if state.get(module) == 2:
            return
        state[module] = 1
        for dependency in sorted(edges[module]):
            visit(dependency, path + [module])
        state[module] = 2

    for module in MODULES:
        visit(module, [])


def test_what_the_doc_names_in_the_code_exists():
    """`module.name` in the doc names something the module has (it named
    imageio.read_image after it moved, and build._finalize)."""
    text = DOC.read_text()
    files = {"json", "jsonl", "py", "txt", "html", "md", "png", "jpg", "task", "tflite"}
    missing = []
    for module, name in sorted(set(re.findall(r"`(\w+)\.(\w+)", text))):
        if module in MODULES and name not in files and not hasattr(importlib.import_module(f"skinseg.{module}"), name):
            missing.append(f"{module}.{name}")
    assert not missing, f"docs/architecture.md names what the code does not have: {missing}"


def test_the_check_sees_a_wrong_row(tmp_path, monkeypatch):
    """The check fails for a row that is not true (so it can fail at all)."""
    wrong = tmp_path / "architecture.md"
    row = DOC.read_text().split("| `hub.py` |")[1].split("\n")[0]
    wrong.write_text(DOC.read_text().replace(row, row.replace("| pixels,", "| files, pixels,")))
    monkeypatch.setattr(f"{__name__}.DOC", wrong)
    with pytest.raises(AssertionError, match=r"hub.py knows nothing about files .* imports \['records'\]"):
        test_a_module_imports_nothing_its_row_says_it_knows_nothing_about("hub")
