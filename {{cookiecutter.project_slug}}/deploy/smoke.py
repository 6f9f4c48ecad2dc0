"""Drive the job flow against a running stack, as CI does after bringing it up.

    python3 deploy/smoke.py --api http://127.0.0.1:8000{% if cookiecutter.use_flower == "yes" %} --flower http://127.0.0.1:5555{% endif %}

The API's bearer token comes from API_TOKEN (`make token`, or
`python -m {{ cookiecutter.package_name }}.auth` inside the api container).
Checks that an anonymous write is refused, then creates a product, dispatches the restock
e-mail and waits for its callback's tag, forces a failure and waits for the failure tag,
computes the summary and sends an ERP sync. With
--flower, also checks that Flower refuses anonymous requests and lists the ERP sync as done
(login from FLOWER_BASIC_AUTH). Standard library only; exits 1 naming the step that failed.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

TIMEOUT = 60.0  # seconds for a job and its callback; a few in practice


class SmokeError(Exception):
    pass


def call(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def expect(status: int, answer: tuple[int, Any], step: str) -> Any:
    if answer[0] != status:
        raise SmokeError(f"{step}: expected {status}, got {answer[0]}: {answer[1]}")
    return answer[1]


def eventually(condition: Callable[[], bool], step: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise SmokeError(f"{step}: not done after {TIMEOUT:.0f} s")
        time.sleep(0.5)


def job_flow(api: str, token: str) -> None:
    auth = {"authorization": f"Bearer {token}"}
    new = {
        "sku": f"SMOKE-{time.time_ns()}",
        "name": "Kettle",
        "category": "kitchen",
        "priceCents": 2599,
        "stock": 0,
    }
    expect(401, call("POST", f"{api}/products/", new), "the API refuses an anonymous write")
    product = expect(201, call("POST", f"{api}/products/", new, auth), "create a product")
    url = f"{api}/products/{product['id']}"

    def tagged(suffix: str) -> Callable[[], bool]:
        # Each callback appends its tag to the category.
        return lambda: str(call("GET", url, headers=auth)[1]["category"]).endswith(suffix)

    email = {"recipientEmail": "buyer@example.com"}
    expect(
        202, call("POST", f"{url}/jobs/restock-email", email, auth), "dispatch the restock e-mail"
    )
    eventually(tagged("-restock-notified"), "the worker runs the job and its callback")
    expect(
        202,
        call("POST", f"{url}/jobs/restock-email", email | {"forceFail": True}, auth),
        "dispatch a failing restock e-mail",
    )
    eventually(tagged("-restock-failed"), "the failure callback after the retries")
    summary = expect(200, call("GET", f"{url}/jobs/summary", headers=auth), "compute the summary")
    if "Kettle" not in summary["summary"]:
        raise SmokeError(f"compute the summary: {summary}")
    expect(
        202,
        call("POST", f"{api}/products/jobs/sync-erp", {"productIds": [product["id"]]}, auth),
        "dispatch the ERP sync",
    )
    print(f"job flow ok on {api}")


def flower_checks(flower: str) -> None:
    expect(401, call("GET", f"{flower}/api/workers"), "Flower refuses anonymous requests")
    login = base64.b64encode(os.environ["FLOWER_BASIC_AUTH"].encode()).decode()
    auth = {"authorization": f"Basic {login}"}
    tasks = f"{flower}/api/tasks?taskname=loom.job.SyncProductToErpJob"
    eventually(
        lambda: any(
            task["state"] == "SUCCESS"
            for task in expect(200, call("GET", tasks, headers=auth), "Flower's task list").values()
        ),
        "Flower lists the ERP sync as done (after its 5 s countdown)",
    )
    print(f"Flower ok on {flower}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--flower", help="Flower's URL; its checks are skipped without it")
    args = parser.parse_args()
    try:
        job_flow(args.api.rstrip("/"), os.environ["API_TOKEN"])
        if args.flower:
            flower_checks(args.flower.rstrip("/"))
    except SmokeError as error:
        print(f"smoke test failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
