"""Plain operations on arrays and tensors: conversions, image ops, colour, noise, motion, RNG, atomic files, digests."""
