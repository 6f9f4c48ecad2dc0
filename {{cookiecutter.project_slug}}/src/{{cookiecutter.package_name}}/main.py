"""ASGI entry point: ``uvicorn {{ cookiecutter.package_name }}.main:app``."""

from {{ cookiecutter.package_name }}.runtime import create_api

app = create_api()
