"""Frame-to-frame coherence: optical flow (CPU), the carried dream on the device (warps, masks, the
anchor, init and target, scene cuts), metrics."""
