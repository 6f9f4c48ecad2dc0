"""The service's API with its transactional outbox left out, for ``make bench`` only.

Dispatches go to the broker as loom 9.0.0 sends them, right after the commit, with
nothing recorded: the bench runs it beside the service, on the service's worker, to
price the outbox per dispatch. Never deploy it: a broker outage loses its jobs.
"""

from unittest import mock

from {{ cookiecutter.package_name }} import runtime

# Installing is all the outbox does at start; left undone, loom's own dispatch stays.
with mock.patch.object(runtime, "install_outbox"):
    app = runtime.create_api()
