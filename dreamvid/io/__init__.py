"""Media at the edge: ffmpeg, frame rates, images, frame sources and sinks (RGB uint8 HxWx3)."""
