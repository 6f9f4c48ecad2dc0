"""Jobs added with ``make new-job``, one module each, outside any domain folder.

The package itself is the registry: manifest.py and the explicit worker_main.py list
whatever modules it holds, so adding a job writes files and YAML and never edits Python.
The modules discovery mode reads its own list instead, ``app.discovery.modules.include``
in config/base.yaml, which ``make new-job`` extends; tests/test_worker_boot.py boots
both modes, so a job added by hand to one list and not the other fails there.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

from loom.core.job.job import Job


def added_job_modules() -> list[str]:
    """Dotted names of this package's modules, in name order (a stable task order)."""
    return sorted(f"{__name__}.{module.name}" for module in pkgutil.iter_modules(__path__))


def added_jobs() -> list[type[Job[Any]]]:
    """The Job classes defined (not merely imported) in this package's modules."""
    found: list[type[Job[Any]]] = []
    for name in added_job_modules():
        module = importlib.import_module(name)
        found.extend(
            value
            for _, value in inspect.getmembers(module, inspect.isclass)
            if issubclass(value, Job) and value is not Job and value.__module__ == name
        )
    return found
