"""The dream engine: models and their weights, objectives, per-step transforms, octave ascent, the Dreamer."""
