"""Every contract model is complete once its module is imported: none waits for a forward reference to be
resolved on first use. A model that does (a field typed with a class defined further down its module) fails to
validate where it is first used in a fresh process whose import path never rebuilt it: a worker restarted by
a crash, running a scheduled staging's first task in Temporal's workflow sandbox, failed so."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import importlib, inspect, pkgutil
from pydantic import BaseModel
import rs_ondemand.models as models
for info in pkgutil.iter_modules(models.__path__):
    module = importlib.import_module(f"rs_ondemand.models.{info.name}")
    for name, obj in vars(module).items():
        if inspect.isclass(obj) and issubclass(obj, BaseModel) and obj.__module__ == module.__name__:
            if not obj.__pydantic_complete__:
                print(f"{module.__name__}.{name}")
"""


def test_every_model_is_complete_on_import() -> None:
    # A fresh interpreter: in this one, other tests may have used (and so rebuilt) the models already.
    found = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, timeout=120)
    assert found.stdout.split() == [], f"models waiting for a rebuild: {found.stdout.split()}"
