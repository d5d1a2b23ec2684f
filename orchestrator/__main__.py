"""`python -m orchestrator` runs the `ontap-rekey` command."""

import sys

from orchestrator.cli import main

sys.exit(main())
