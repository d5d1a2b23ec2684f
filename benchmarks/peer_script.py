"""The peer: a fleet rekey as an administrator would script it with NetApp's own client.

    ONTAP_SIM_PASSWORD=... REQUESTS_CA_BUNDLE=ca.pem \\
        python benchmarks/peer_script.py INVENTORY.yaml [--per-cluster 4]

One thread per cluster; each lists the cluster's AWS KMS configurations and rekeys them
through a thread pool of `--per-cluster` workers, `AwsKms(...).rekey_external(body=...,
poll=True)` (the library posts, then polls the job at its own interval until it ends). The
key is re-versioned (the same key id), as `ontap-rekey run` does with the simulator's
inventory. Prints one JSON line: rekeyed, failed, and the process's own CPU and peak RSS.

The inventory is the one `ontap-rekey simulate --write-inventory` writes: only the host
URLs, the username and the password's environment variable are read from it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from netapp_ontap import HostConnection  # type: ignore[attr-defined]
from netapp_ontap.error import NetAppRestError
from netapp_ontap.resources import AwsKms  # type: ignore[attr-defined]


def connect(host_url: str, username: str, password: str) -> HostConnection:
    url = urlsplit(host_url)
    # verify=True: requests trusts REQUESTS_CA_BUNDLE, as an administrator would set it.
    return HostConnection(url.hostname, port=url.port, username=username, password=password,
                          verify=True)  # fmt: skip


def rekey_one(connection: HostConnection, kms: AwsKms) -> bool:
    try:
        with connection:
            kms.rekey_external(body={"key_id": kms.key_id}, poll=True)
        return True
    except NetAppRestError as err:
        print(f"{kms.uuid}: {err}", file=sys.stderr)
        return False


def rotate_cluster(host_url: str, username: str, password: str, per_cluster: int) -> list[bool]:
    connection = connect(host_url, username, password)
    try:
        with connection:
            configs = list(AwsKms.get_collection(fields="uuid,svm,key_id"))
    except NetAppRestError as err:
        print(f"{host_url}: {err}", file=sys.stderr)
        return [False]  # a cluster not rotated counts as a failure
    with ThreadPoolExecutor(max_workers=per_cluster) as pool:
        return list(pool.map(lambda kms: rekey_one(connection, kms), configs))


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("inventory", type=Path)
    p.add_argument("--per-cluster", type=int, default=4)
    args = p.parse_args()
    inventory = yaml.safe_load(args.inventory.read_text())
    auth = inventory["defaults"]["auth"]
    password = os.environ[auth["password_env"]]
    hosts = [c["host"] for c in inventory["clusters"]]
    with ThreadPoolExecutor(max_workers=len(hosts)) as clusters:
        results = list(clusters.map(
            lambda host: rotate_cluster(host, auth["username"], password, args.per_cluster), hosts
        ))  # fmt: skip
    done = [ok for cluster in results for ok in cluster]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "rekeyed": sum(done), "failed": len(done) - sum(done),
        "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024,
    }))  # fmt: skip
    return 0 if all(done) else 1


if __name__ == "__main__":
    sys.exit(main())
