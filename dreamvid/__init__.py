"""dreamvid: DeepDream for videos, frame sequences, images and endless zoom loops.

    from dreamvid import dream_image, dream_video, zoom_loop, settings_from_preset
    dream_image("photo.jpg", "dream.png")                       # default preset, offline model
    dream_video("in.mp4", "out.mp4", settings_from_preset("seals"))
    zoom_loop("photo.jpg", "loop.gif")

Renders report through ``on_event=callable`` (start, frame, encode, done, …) and stop cleanly when
``cancel`` (a threading.Event) is set, raising ``dreamvid.Cancelled``; the library never prints.

Names are imported lazily, so `python -m dreamvid` answers Ctrl-C and --help before torch loads.
"""

import importlib

__version__ = "0.3.0"

_EXPORTS = {
    "dream_image": "pipeline.image", "dream_video": "pipeline.video", "zoom_loop": "pipeline.zoom",
    "load_model": "engine.models", "Dreamer": "engine.dreamer", "DreamSettings": "config.settings",
    "VideoSettings": "config.settings", "ZoomSettings": "config.settings", "RunOptions": "config.settings",
    "MaskSettings": "config.settings", "preview_sheet": "pipeline.preview", "dream_batch": "pipeline.batch",
    "PRESETS": "config.presets", "DEFAULT_PRESET": "config.presets", "settings_from_preset": "config.presets",
    "DreamvidError": "errors", "Cancelled": "errors", "SettingError": "errors",
    "render_segment": "pipeline.video", "join_segments": "pipeline.video", "Event": "pipeline.events",
    "render_distributed": "dist", "run_live": "pipeline.live", "LiveKnobs": "pipeline.live",
    "LiveSettings": "config.settings",
}
__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dreamvid' has no attribute {name!r}")


def __dir__():
    return __all__
