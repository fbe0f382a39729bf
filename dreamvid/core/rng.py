"""Randomness keyed to (seed, frame index), never to process history: a frame's pixels do not
depend on which process or worker made it."""

from __future__ import annotations

import torch


def _randint(gen: torch.Generator, high: int) -> int:
    """Uniform int in [0, high) from `gen` (a CPU generator: identical on every device)."""
    return int(torch.randint(0, max(high, 1), (1,), generator=gen).item())


def make_generator(seed: int, *salt: int) -> torch.Generator:
    """A CPU generator seeded from the run's seed and e.g. a frame index, never from process history."""
    mixed = seed & 0xFFFFFFFF
    for v in salt:
        # splitmix-style mixing so (seed, frame) pairs don't collide for nearby values
        mixed = (mixed * 0x9E3779B97F4A7C15 + (v & 0xFFFFFFFF) + 0x632BE59BD9B4E019) & 0xFFFFFFFFFFFFFFFF
        mixed ^= mixed >> 31
    gen = torch.Generator(device="cpu")
    gen.manual_seed(mixed & 0x7FFFFFFFFFFFFFFF)
    return gen
