"""Docstrings are documentation that runs: every public class and function has one, with an
example; every example in the package passes as a doctest (examples that need a data set on
disk or a plotting window are marked ``# doctest: +SKIP``)."""
from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

import ctrkit

#: modules whose ``__all__`` is public API, and the public names of modules without one
PUBLIC_MODULES = ["ctrkit", "ctrkit.features", "ctrkit.callbacks", "ctrkit.metrics",
                  "ctrkit.regularizers", "ctrkit.data", "ctrkit.datasets", "ctrkit.layers",
                  "ctrkit.models", "ctrkit.models.din", "ctrkit.errors"]
PUBLIC_NAMES = {
    "ctrkit.features": ["SparseFeat", "DenseFeat", "VarLenSparseFeat", "get_feature_names"],
    "ctrkit.registry": ["Registry", "register_model", "register_layer", "register_activation",
                        "register_metric", "register_loss", "register_optimizer",
                        "register_regularizer"],
    "ctrkit.plot": ["plot_history", "attention_heatmap", "save_figure"],
    "ctrkit.strategies": ["is_rank_zero", "local", "world", "launched_with_torchrun"],
    "ctrkit.persistence": ["save_model", "load_model"],
    "ctrkit.export": ["export_model"],
}


def public_objects():
    """(qualified name, object) of every public class and function, each once."""
    seen, out = set(), []
    for modname in PUBLIC_MODULES + [m for m in PUBLIC_NAMES if m not in PUBLIC_MODULES]:
        mod = importlib.import_module(modname)
        names = PUBLIC_NAMES.get(modname) or getattr(mod, "__all__")
        for name in names:
            obj = getattr(mod, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            key = (obj.__module__, obj.__qualname__)
            if key not in seen:
                seen.add(key)
                out.append((f"{modname}.{name}", obj))
    return out


#: modules whose examples need an optional extra: skipped (with the reason) when it is absent
OPTIONAL = {"parquet": "pyarrow", "torchrec": "torchrec", "tensorboard": "tensorboard",
            "onnx": "onnxruntime", "plot": "matplotlib"}


def all_modules():
    names = ["ctrkit"]
    for info in pkgutil.walk_packages(ctrkit.__path__, "ctrkit."):
        names.append(info.name)
    return sorted(names)


def test_every_public_class_and_function_has_a_docstring_with_an_example():
    objects = public_objects()
    assert len(objects) > 60
    no_doc = [n for n, o in objects if not (o.__doc__ or "").strip()]
    no_example = [n for n, o in objects if (o.__doc__ or "").strip() and ">>>" not in o.__doc__]
    assert not no_doc and not no_example, (
        "Every public class and function needs a docstring (one-line summary, Args, Returns, "
        "Raises) with an 'Example:' section of >>> lines that runs as a doctest (mark a line that "
        "needs a data set on disk or a plot window '# doctest: +SKIP').\n"
        f"No docstring: {no_doc}\nNo example: {no_example}")


@pytest.mark.parametrize("modname", all_modules())
def test_doctests_pass(modname):
    for part, package in OPTIONAL.items():
        if part in modname:
            pytest.importorskip(package, reason=f"{modname}'s examples need {package}")
    module = importlib.import_module(modname)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list = []
    for test in finder.find(module, modname):
        if test.examples and test.name.startswith(modname):  # not names imported from elsewhere
            test.globs.setdefault("ctrkit", ctrkit)
            runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(report)
