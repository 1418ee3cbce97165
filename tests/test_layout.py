"""The package reads as the pipeline: a subpackage per stage, no import circles, a light `import pricer`."""

import ast
import subprocess
import sys
from pathlib import Path

import pricer

PACKAGE = Path(pricer.__file__).parent


def module_imports() -> dict[str, set[str]]:
    """For every pricer module, the pricer modules it imports, at its top or inside a function (an import deferred to
    first use still ties the two modules together: a circle through it is a circle)."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pricer"):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("pricer"))
        graph[name] = found
    return {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}


def test_no_import_circles():
    graph = module_imports()
    done, path = set(), []

    def visit(module):
        if module in path:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(module):] + [module]))
        if module in done:
            return
        path.append(module)
        for dep in graph[module]:
            if dep != "pricer":  # every module may take PricerError from the package root
                visit(dep)
        path.pop()
        done.add(module)

    for module in graph:
        visit(module)


def test_a_subpackage_per_stage_and_no_flat_modules_left():
    stages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert {"data", "predictors", "llm", "evaluation", "serving", "deals"} <= stages
    flat = {p.stem for p in PACKAGE.glob("*.py")}
    assert flat <= {"__init__", "api", "cli", "demo", "errors", "storage"}, flat


def test_import_pricer_and_the_classical_path_do_not_load_torch():
    code = "import sys, pricer, pricer.predictors.classical, pricer.evaluation.tester; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
