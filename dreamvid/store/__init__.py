"""Render state on disk: checkpoints (per render and per segment), locks, input fingerprints."""
