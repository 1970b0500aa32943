import subprocess
import sys

import sklearn.exceptions

import ctrkit
from ctrkit import errors


def test_hierarchy():
    for name in ("ConfigError", "InputError", "UnknownNameError", "DuplicateNameError",
                 "NotCompiledError", "CallbackError", "SerializationError", "NotFittedError"):
        assert issubclass(getattr(errors, name), ctrkit.CtrkitError), name
    assert issubclass(errors.InputError, ValueError)
    assert issubclass(errors.InputTypeError, TypeError)
    assert issubclass(errors.NotFittedError, sklearn.exceptions.NotFittedError)
    assert errors.NotFittedError is errors.NotFittedError  # built once


def test_import_is_light_and_quiet():
    code = ("import sys, ctrkit; "
            "print(sorted(m for m in ('sklearn', 'pandas', 'scipy', 'matplotlib', 'requests') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(__import__("pathlib").Path(ctrkit.__file__).parents[1]))
    assert out.stdout.strip() == "[]" and out.stderr == ""
