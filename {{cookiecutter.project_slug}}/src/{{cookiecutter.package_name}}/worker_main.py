"""Celery entry point: ``celery -A {{ cookiecutter.package_name }}.worker_main:celery_app worker``.

Jobs, callbacks and use cases come from ``app.discovery`` in config/base.yaml.
"""

from {{ cookiecutter.package_name }}.runtime import create_worker

celery_app = create_worker()
