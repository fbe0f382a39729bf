"""Frame-to-frame coherence: optical flow, the carried dream (warp, mask, init, scene cuts), metrics."""
