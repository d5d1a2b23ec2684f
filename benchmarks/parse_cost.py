"""CPU cost of parsing ONTAP's answers on the hot path (`orchestrator/ontap/models.py`).

    .venv/bin/python benchmarks/parse_cost.py [--repeat 7]

Per payload the best of `--repeat` timeit runs, in microseconds per parse: the answer to
a rekey POST (202 with the job's link; 201 with the whole job), one job record (each
poll), a collection page of 40 AWS KMS records with their health fields (one read-back
batch or one discovery page), and one of 40 key stores (discovery's readiness read). The
payloads are the simulator's shapes.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from typing import Any

from orchestrator.core.providers import Provider
from orchestrator.ontap.models import Job, KeyManagerConfig, KeyStore, RekeySubmission

JOB: dict[str, Any] = {
    "uuid": "0f1e2d3c-1111-2222-3333-444455556666",
    "description": "POST /api/security/aws-kms/cfg-0001/rekey-external",
    "state": "success",
    "message": "success",
    "code": 0,
    "start_time": "2026-12-01T10:00:00+00:00",
    "end_time": "2026-12-01T10:00:03+00:00",
    "node": {"name": "n1"},
    "svm": {"name": "svm01", "uuid": "s-1"},
    "_links": {"self": {"href": "/api/cluster/jobs/0f1e2d3c-1111-2222-3333-444455556666"}},
}
LINK = {"job": {"uuid": JOB["uuid"], "_links": JOB["_links"]}}


def aws_record(i: int) -> dict[str, Any]:
    ok = {"reachable": True, "code": "0", "message": ""}
    nodes = [{"node": {"name": f"n{n}", "uuid": f"nu{n}"}} | ok for n in range(2)]
    return {
        "uuid": f"cfg-{i:04d}",
        "scope": "svm",
        "svm": {"name": f"svm{i:02d}", "uuid": f"su-{i}"},
        "key_id": f"arn:aws:kms:us-east-1:123456789012:key/{i:08d}",
        "region": "us-east-1",
        "_links": {"self": {"href": f"/api/security/aws-kms/cfg-{i:04d}"}},
        "state": {"cluster_state": True, "code": "0", "message": ""},
        "amazon_reachability": ok,
        "ekmip_reachability": nodes,
    }


PAGE = [aws_record(i) for i in range(40)]
STORES = [
    {
        "uuid": f"cfg-{i:04d}",
        "svm": {"name": f"svm{i:02d}", "uuid": f"su-{i}"},
        "scope": "svm",
        "type": "aws",
        "enabled": True,
        "state": "active",
    }
    for i in range(40)
]
CASES: dict[str, Callable[[], object]] = {
    "POST 202 answer": lambda: RekeySubmission.from_json(202, LINK),
    "POST 201 answer with its job": lambda: RekeySubmission.from_json(201, {"job": JOB}),
    "job record": lambda: Job.from_json(JOB),
    "page of 40 aws-kms records": lambda: [
        KeyManagerConfig.from_json(Provider.AWS, record) for record in PAGE
    ],
    "page of 40 key stores": lambda: [KeyStore.from_json(record) for record in STORES],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    for name, parse in CASES.items():
        number = 100 if "page" in name else 2000
        best = min(timeit.repeat(parse, number=number, repeat=args.repeat)) / number
        print(f"{name:30s} {best * 1e6:8.1f} us")


if __name__ == "__main__":
    main()
