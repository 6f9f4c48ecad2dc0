"""{{ cookiecutter.project_name }} service."""
