"""The package layout: imports only point down, and no import cycle exists inside src/."""

from __future__ import annotations

import ast
from pathlib import Path

from src.build.embedded_code import SRC_ROOT, imported_modules

# Lower layers never import higher ones; packages in one layer do not import each other.
LAYERS = (
    ("src.common",),
    ("src.params",),
    ("src.data", "src.gan", "src.build"),
    ("src.components",),
    ("src.pipeline",),
    ("src.backends",),
    ("src.cli",),
)


def module_name(path: Path, root: Path) -> str:
    parts = ("src", *path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_main_guard(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and getattr(node.test.left, "id", None) == "__name__"
    )


def import_graph(root: Path = SRC_ROOT) -> dict[str, set[str]]:
    """Module -> project modules it imports anywhere, except under `if __name__ == "__main__"`."""
    graph = {}
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        tree.body = [node for node in tree.body if not is_main_guard(node)]
        graph[module_name(path, root)] = {m for m in imported_modules(tree, root) if m != "src"}
    return graph


def layer_of(module: str) -> tuple[int, str]:
    for number, packages in enumerate(LAYERS):
        for package in packages:
            if module == package or module.startswith(package + "."):
                return number, package
    raise AssertionError(f"{module} belongs to no layer: add its package to LAYERS")


def test_every_import_points_down_or_within_its_package():
    wrong = []
    for module, imports in import_graph().items():
        if module == "src":
            continue
        layer, package = layer_of(module)
        for target in imports:
            target_layer, target_package = layer_of(target)
            if target_layer > layer or (target_layer == layer and target_package != package):
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_no_import_cycle_inside_src():
    graph = import_graph()
    visiting, done, cycles = set(), set(), []

    def visit(module: str, trail: list[str]) -> None:
        if module in done or module not in graph:
            return
        if module in visiting:
            cycles.append(" -> ".join([*trail[trail.index(module) :], module]))
            return
        visiting.add(module)
        for target in sorted(graph[module]):
            visit(target, [*trail, module])
        visiting.discard(module)
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert cycles == []


def test_the_import_graph_sees_a_planted_cycle_through_a_function_level_import(tmp_path):
    # Given two modules that import each other
    (tmp_path / "a.py").write_text("from src.b import x\n")
    (tmp_path / "b.py").write_text("def f():\n    from src.a import y\n")
    # When the graph is read, then the function-level import still counts
    graph = import_graph(tmp_path)
    assert graph["src.a"] == {"src.b"} and graph["src.b"] == {"src.a"}


# Inside src.gan, bottom up: the shared top-level modules, upstream's networks, the scores, sampling,
# what a person watches, and training, which uses them all.
GAN_LAYERS = (
    ("src.gan.config", "src.gan.random_state", "src.gan.model_folder", "src.gan.images"),
    ("src.gan.networks",),
    ("src.gan.scoring",),
    ("src.gan.sampling",),
    ("src.gan.watching",),
    ("src.gan.training",),
)


def gan_layer_of(module: str) -> int:
    for number, packages in enumerate(GAN_LAYERS):
        if any(module == p or module.startswith(p + ".") for p in packages):
            return number
    raise AssertionError(f"{module} belongs to no layer of src.gan: add it to GAN_LAYERS")


def test_inside_the_gan_package_imports_point_down():
    wrong = [
        f"{module} -> {target}"
        for module, imports in import_graph().items()
        if module.startswith("src.gan.") and module.count(".") >= 2
        for target in imports
        if target.startswith("src.gan.") and gan_layer_of(target) > gan_layer_of(module)
    ]
    assert wrong == []


def test_the_generate_step_can_leave_training_out():
    # sampling and scoring never reach training, so the generate step ships none of it
    graph = import_graph()
    reached = {
        target
        for module, imports in graph.items()
        if module.startswith(("src.gan.sampling", "src.gan.scoring"))
        for target in imports
    }
    assert [target for target in reached if target.startswith("src.gan.training")] == []
