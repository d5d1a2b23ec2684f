"""Reading the inventory: YAML in, the resolved `orchestrator.core.inventory` types out.

The I/O edge around the pure model in `orchestrator.core.inventory_model`.
"""

from __future__ import annotations

from orchestrator.config.loader import LoadResult, load, load_inventory

__all__ = ["LoadResult", "load", "load_inventory"]
