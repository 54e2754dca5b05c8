"""The architecture, checked (docs/architecture.md): the stages import only downwards and never
in a circle, only the kernel (and image programs) run processes, modules stay small, and the
scenario schema's enums are exactly the registered kinds."""

import ast
import json
from importlib import resources
from pathlib import Path

import pytest

from kemu import registry
from kemu.scenario.model import PRESETS

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "kemu"

# The stages, lowest first: a module may import its own stage and those below, never above.
STAGES = [
    {"kemu", "kemu.errors", "kemu.clock", "kemu.files", "kemu.registry"},
    {"kemu.images"},
    {"kemu.scenario"},
    {"kemu.k8s"},
    {"kemu.kernel"},
    {"kemu.backend", "kemu.topology"},  # the plugin surfaces
    {"kemu.edge"},
    {"kemu.cluster"},
    {"kemu.events", "kemu.measure"},
    {"kemu.report"},
    {"kemu.experiment"},
    {"kemu.lab"},
    {"kemu.cli"},
    {"kemu.__main__"},
]
SHIMS = {"kemu.node", "kemu.ipam", "kemu.daemon", "kemu.objects"}  # deprecated re-exports


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def runtime_imports(path: Path, known: set[str]) -> set[str]:
    """The kemu modules `path` imports when it runs (function-level imports included;
    imports under `if TYPE_CHECKING:` left out: they are for the type checker only)."""
    tree = ast.parse(path.read_text())
    checking = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                for child in node.body for n in ast.walk(child)}
    package = module_name(path) if path.name == "__init__.py" else \
        module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in checking:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            found |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                      for alias in node.names}
    return {m for m in found if m in known}


def stage(name: str) -> int:
    for rank, members in enumerate(STAGES):
        if any(name == m or name.startswith(m + ".") for m in members if m != "kemu"):
            return rank
    assert name == "kemu" or name in STAGES[0], f"{name} is in no stage"
    return 0


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: runtime_imports(path, set(mods)) - {name} for name, path in mods.items()
            if name not in SHIMS}


def test_every_folder_is_a_package():
    folders = {p.parent for p in PACKAGE.rglob("*.py")}
    assert not [f for f in folders if not (f / "__init__.py").exists()]


def test_every_module_has_a_stage():
    for name in graph():
        stage(name)


def test_no_import_points_up():
    upward = [f"{a} (stage {stage(a)}) imports {b} (stage {stage(b)})"
              for a, targets in graph().items() for b in targets
              if b not in SHIMS and stage(b) > stage(a)]
    assert not upward, "\n".join(upward)


def test_no_import_cycle():
    edges = graph()
    seen: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> None:
        if node in path:
            pytest.fail("import cycle: " + " → ".join(path[path.index(node):] + [node]))
        if node in seen:
            return
        path.append(node)
        for target in sorted(edges.get(node, ())):
            visit(target)
        path.pop()
        seen.add(node)

    for node in sorted(edges):
        visit(node)


def test_only_the_kernel_and_image_programs_start_processes():
    offenders = [name for name, path in modules().items()
                 if "subprocess" in runtime_imports_any(path)
                 and not name.startswith(("kemu.kernel.", "kemu.images."))]
    assert not offenders, offenders


def runtime_imports_any(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    return names | {node.module or "" for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom)}


@pytest.mark.parametrize("folder", ["kemu", "plugins", "topologies"])
def test_modules_stay_small(folder):
    big = {str(p.relative_to(ROOT)): n for p in (ROOT / folder).rglob("*.py")
           if (n := len(p.read_text().splitlines())) > 450}
    assert not big, f"modules over 450 lines: {big}"


def test_the_schema_enums_are_the_registered_kinds():
    schema = json.loads(resources.files("kemu.scenario").joinpath("schema.json").read_text())
    measurement = schema["$defs"]["measurement"]
    assert set(measurement["properties"]["type"]["enum"]) == set(registry.measurements())
    assert set(schema["$defs"]["event"]["properties"]["action"]["enum"]) == \
        set(registry.events())
    preset = schema["properties"]["external"]["properties"]["loadBalancer"]["properties"]
    assert set(preset["preset"]["enum"]) == set(PRESETS)
    for kind in registry.measurements().values():  # every parameter a kind takes is in it
        assert set(kind.defaults()) <= set(measurement["properties"]), kind.type


def test_backends_and_measurements_require_what_doctor_checks():
    from kemu.kernel import doctor

    names = {c.name for c in doctor.check()}
    for backend in registry.backends().values():
        assert set(backend.requires) <= names, backend.name
    for kind in registry.measurements().values():
        assert set(kind.requires) <= names, kind.type
