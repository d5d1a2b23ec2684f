"""The rotation engine: discovery, the per-target procedure, waves, limits (anyio)."""
