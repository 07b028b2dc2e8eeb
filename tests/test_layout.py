"""The package's shape: stage logic free of Luigi and of other stages' declarations, no import circles,
small modules, and developer tools outside the runtime stages.

Read from the source with ``ast`` (module-level imports only), because importing ``stages`` registers every
task first and would hide a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from stages.registry import STAGES

PACKAGE = Path(__file__).resolve().parents[1] / "stages"
# What the generic machinery and the declarations are made of: a stage's logic reaches none of it.
MACHINERY = ("luigi", "stages.tasking", "stages.registry", "stages.declare", "stages.runners", "stages.inputs",
             "stages.config")

# A stage's Luigi layer: its declaration and the task-side helpers it alone uses.
DECLARATION_MODULES = ("stage", "runtime", "publish")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def top_level_imports(path: Path) -> set[str]:
    """Modules imported when the module loads (imports inside functions run later, by choice)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names
                         if f"{node.module}.{alias.name}" in MODULES)
    return found


def stage_logic_modules() -> list[str]:
    """Every module of a stage folder but its Luigi layer (DECLARATION_MODULES)."""
    names = []
    for stage in STAGES:
        for name in MODULES:
            if name.startswith(f"stages.{stage.name}.") and name.rsplit(".", 1)[-1] not in DECLARATION_MODULES:
                names.append(name)
    return names


@pytest.mark.parametrize("name", stage_logic_modules())
def test_stage_logic_imports_no_machinery(name):
    imported = top_level_imports(MODULES[name])
    reached = sorted(module for module in imported for banned in MACHINERY
                     if module == banned or module.startswith(f"{banned}."))
    reached += sorted(module for module in imported if module.endswith(".stage"))
    assert not reached, f"{name} imports {reached}: stage logic takes arrays, tables and settings, not tasks"


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """A path that comes back to its start, if the graph has one."""
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> list[str] | None:
        if name in trail:
            return trail[trail.index(name):] + [name]
        if name in done:
            return None
        for module in sorted(graph.get(name, ())):
            if (circle := visit(module, [*trail, name])) is not None:
                return circle
        done.add(name)
        return None

    for name in sorted(graph):
        if (circle := visit(name, [])) is not None:
            return circle
    return None


def test_no_import_circles_inside_the_package():
    graph = {name: {module for module in top_level_imports(path) if module in MODULES and module != "stages"}
             for name, path in MODULES.items()}
    assert graph["stages.classify.stage"], "the graph reads nothing: the checker would pass anything"
    circle = find_circle(graph)
    assert circle is None, f"import circle: {' -> '.join(circle)}"


def test_circle_check_finds_a_circle():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_modules_stay_small():
    large = {name: count for name, path in MODULES.items() if (count := len(path.read_text().splitlines())) > 300}
    assert not large, f"modules over 300 lines (a long module usually holds two ideas): {large}"


def test_developer_tools_live_outside_the_stages():
    stage_names = {stage.name for stage in STAGES}
    folders = {path.name for path in PACKAGE.iterdir() if path.is_dir() and not path.name.startswith("_")}
    assert folders - stage_names == {"dev"}, "a folder of stages/ is either a stage of the registry or stages/dev"
    for stage in STAGES:
        assert (PACKAGE / stage.name / "stage.py").exists(), f"stage {stage.name} has no declaration"
        assert not (PACKAGE / stage.name / "task.py").exists(), f"stage {stage.name} keeps a task module"
