"""Settings: dataclasses with every default and valid range, presets, schedules."""
