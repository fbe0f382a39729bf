"""dreamvid: DeepDream for videos, frame sequences, images and endless zoom loops.

    from dreamvid import dream_image, dream_video, zoom_loop
    dream_image("photo.jpg", "dream.png")                       # default preset, offline model
    dream_video("in.mp4", "out.mp4", settings_from_preset("seals"))
"""

__version__ = "0.1.0"

from .dream import DreamSettings  # noqa: E402
from .dreamer import Dreamer  # noqa: E402
from .errors import DreamvidError  # noqa: E402
from .models import load_model  # noqa: E402
from .presets import DEFAULT_PRESET, PRESETS, settings_from_preset  # noqa: E402
from .settings import RunOptions, VideoSettings, ZoomSettings  # noqa: E402


def dream_image(*args, **kwargs):
    """See dreamvid.image.dream_image."""
    from .image import dream_image as _dream_image
    return _dream_image(*args, **kwargs)


def dream_video(*args, **kwargs):
    """See dreamvid.render.dream_video."""
    from .render import dream_video as _dream_video
    return _dream_video(*args, **kwargs)


def zoom_loop(*args, **kwargs):
    """See dreamvid.zoom.zoom_loop."""
    from .zoom import zoom_loop as _zoom_loop
    return _zoom_loop(*args, **kwargs)


__all__ = ["dream_image", "dream_video", "zoom_loop", "load_model", "Dreamer", "DreamSettings",
           "VideoSettings", "ZoomSettings", "RunOptions", "PRESETS", "DEFAULT_PRESET",
           "settings_from_preset", "DreamvidError", "__version__"]
