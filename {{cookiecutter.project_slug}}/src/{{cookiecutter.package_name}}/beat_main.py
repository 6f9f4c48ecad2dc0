"""Celery beat entry point, started as
``celery -A {{ cookiecutter.package_name }}.beat_main:celery_app beat``.

The worker's own Celery app (same broker settings, job classes carrying their jobs.yaml
routing) plus config/schedule.yaml. Run exactly one: two beats send every entry twice.
"""

from {{ cookiecutter.package_name }}.runtime import config_dir
from {{ cookiecutter.package_name }}.schedule import configure_beat
from {{ cookiecutter.package_name }}.setting_error import SettingError
from {{ cookiecutter.package_name }}.worker_main import celery_app

try:
    configure_beat(celery_app, config_dir())
except SettingError as exc:
    raise SystemExit(f"ERROR: {exc}") from None

__all__ = ["celery_app"]
