"""`python -m orchestrator.simulator ...`: the same as `ontap-rekey simulate ...`.

For benchmarks and crash tests that want the simulator in a process of its own.
"""

from __future__ import annotations

import sys

from orchestrator.cli import main

if __name__ == "__main__":
    sys.exit(main(["simulate", *sys.argv[1:]]))
