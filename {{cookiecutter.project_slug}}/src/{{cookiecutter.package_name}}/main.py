"""ASGI entry point: ``uvicorn {{ cookiecutter.package_name }}.main:app``."""

from {{ cookiecutter.package_name }}.broker import one_line_refusal
from {{ cookiecutter.package_name }}.runtime import create_api

with one_line_refusal():
    app = create_api()
