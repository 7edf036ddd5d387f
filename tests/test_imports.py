"""Imports point one way (docs/ARCHITECTURE.md): releases imports no other app; pipelines and deploy import
releases and never each other; sla imports neither; nothing imports frontend; no import cycle, including imports
hidden inside functions. The graph is read from the source with ast, so a lazy import counts like any other."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APPS = ("releases", "pipelines", "deploy", "sla", "routing", "frontend", "demo", "rollgate_client", "rollgate_cli",
        "notifications", "config", "alerts", "observability")


def _modules() -> dict[str, Path]:
    found = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _imports(path: Path, module: str, known: dict) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
    return targets


def import_graph() -> dict[str, set[str]]:
    known = _modules()
    return {module: _imports(path, module, known) for module, path in known.items()}


def forbidden(source: str, target: str) -> str | None:
    a, b = source.split(".")[0], target.split(".")[0]
    if a == b:
        return None
    if a == "releases":
        return "releases imports no other app"
    if a in ("rollgate_cli", "rollgate_client"):
        return f"{a} stands alone (it talks HTTP only; no Django app behind it)"
    if {a, b} == {"pipelines", "deploy"}:
        return "pipelines and deploy never import each other"
    if a == "sla" and b in ("pipelines", "deploy"):
        return "sla imports neither pipelines nor deploy"
    if a == "alerts" and b not in ("releases", "alerts"):
        return "alerts (the Alertmanager receiver) imports releases only"
    if b in ("alerts", "observability") and a not in ("config", "observability"):
        return f"nothing imports {b} (config only routes to it)"
    if b == "frontend" and a != "config":
        return "nothing imports frontend (config only routes to it)"
    return None


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_app_imports_against_the_documented_direction():
    graph = import_graph()
    assert "deploy.rollouts" in graph and "pipelines.services" in graph  # the walk found the apps
    bad = sorted(f"{a} -> {b}: {why}" for a, targets in graph.items() for b in targets
                 if (why := forbidden(a, b)))
    assert bad == []


def test_there_is_no_import_cycle_even_through_imports_inside_functions():
    assert cycles(import_graph()) == []


def test_the_checks_catch_a_cycle_and_a_forbidden_edge():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert forbidden("pipelines.runners", "deploy.services")
    assert forbidden("sla.services", "deploy.models")
    assert forbidden("deploy.api", "frontend.views")
    assert forbidden("rollgate_cli.main", "releases.services")
    assert forbidden("alerts.services", "deploy.services")
    assert forbidden("releases.services", "alerts.models")
    assert forbidden("deploy.rollouts", "releases.services") is None
