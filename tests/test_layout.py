"""The package's stages import one way: a module of allseg/ imports from its own stage or an
earlier one, never from a later one, so each stage can be read knowing only those before it."""
import ast

from conftest import ROOT

STAGES = ("core", "cells", "data", "model", "train", "infer", "evaluate")


def imported_allseg_modules(path):
    """Every allseg.* module a file imports, at any depth (imports inside functions count)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        yield from (name for name in names if name.split(".")[0] == "allseg")


def test_every_module_lives_in_a_stage():
    loose = [p.name for p in (ROOT / "allseg").glob("*.py") if p.name != "__init__.py"]
    assert not loose, f"modules outside the stage folders: {loose}"
    assert sorted(p.name for p in (ROOT / "allseg").iterdir() if p.is_dir()
                  and p.name != "__pycache__") == sorted(STAGES)


def test_no_stage_imports_a_later_one():
    wrong = []
    for stage in STAGES:
        for path in sorted((ROOT / "allseg" / stage).glob("*.py")):
            for module in imported_allseg_modules(path):
                parts = module.split(".")
                assert len(parts) >= 2 and parts[1] in STAGES, f"{path}: imports {module}"
                if STAGES.index(parts[1]) > STAGES.index(stage):
                    wrong.append(f"allseg/{stage}/{path.name} imports {module}")
    assert not wrong, "imports from a later stage:\n" + "\n".join(wrong)


def test_a_model_saved_before_the_layout_moved_still_loads():
    import numpy as np
    import keras

    import allseg.model.losses_metrics  # noqa: F401  (registers the loss and metrics)

    model = keras.models.load_model(ROOT / "tests" / "data" / "model_saved_before_the_layout.keras",
                                    safe_mode=True)
    assert type(model.loss).__name__ == "BceDice"
    image = np.full((1, 32, 32, 3), 128, np.float32)
    prob = model.predict(image, verbose=0)
    assert prob.shape == (1, 32, 32, 1) and 0 <= prob.min() and prob.max() <= 1
    scores = model.evaluate(image, np.ones((1, 32, 32, 1), np.float32), return_dict=True, verbose=0)
    assert {"loss", "dice", "iou"} <= set(scores)  # the custom metrics came back too


def test_no_function_is_longer_than_fifty_lines():
    long = []
    for path in sorted((ROOT / "allseg").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 50:
                    long.append(f"{path.relative_to(ROOT)}: {node.name}, {lines} lines")
    assert not long, "functions over 50 lines:\n" + "\n".join(long)


def test_an_import_inside_a_function_says_why():
    """Imports sit at the top of a module; one left inside a function (a measured start-up
    cost) carries an '# imported here: ...' comment just above it."""
    unexplained = []
    for path in sorted((ROOT / "allseg").rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    above = lines[inner.lineno - 2].strip()
                    if not above.startswith("# imported here"):
                        unexplained.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    assert not unexplained, "imports inside functions without a reason:\n" + "\n".join(unexplained)
