{%- if cookiecutter.worker_bootstrap == "explicit" -%}
"""Celery entry point: ``celery -A {{ cookiecutter.package_name }}.worker_main:celery_app worker``.

The guide's explicit bootstrap: the jobs and callbacks are named here. The use cases the
callbacks invoke still come from ``app.discovery`` in config/base.yaml, which
``bootstrap_worker`` adds on top of ``jobs=``. Jobs added with ``make new-job`` come from
the ``jobs`` package, which lists itself.
"""

from {{ cookiecutter.package_name }}.jobs import added_jobs
from {{ cookiecutter.package_name }}.product.callbacks import (
    RestockEmailFailureCallback,
    RestockEmailSuccessCallback,
)
from {{ cookiecutter.package_name }}.product.jobs import (
    BuildProductSummaryJob,
    LowStockSweepJob,
    SendRestockEmailJob,
    SyncProductToErpJob,
)
from {{ cookiecutter.package_name }}.runtime import create_worker

celery_app = create_worker(
    jobs=[
        SendRestockEmailJob,
        BuildProductSummaryJob,
        SyncProductToErpJob,
        LowStockSweepJob,
        *added_jobs(),
    ],
    callbacks=[RestockEmailSuccessCallback, RestockEmailFailureCallback],
)
{%- else -%}
"""Celery entry point: ``celery -A {{ cookiecutter.package_name }}.worker_main:celery_app worker``.

Jobs, callbacks and use cases come from ``app.discovery`` in config/base.yaml
({{ cookiecutter.worker_bootstrap }} mode).
"""

from {{ cookiecutter.package_name }}.runtime import create_worker

celery_app = create_worker()
{%- endif %}
