"""What every render entry point does the same way: defaults, the dreamer, per-frame settings."""

from __future__ import annotations

from fractions import Fraction
from typing import Mapping, Optional

from ..config.presets import settings_from_preset
from ..config.settings import DreamSettings, RunOptions
from ..config.vary import FrameSettings, RenderContext, Varying
from ..engine.dreamer import Dreamer
from ..io.images import read_image


def build_dreamer(settings: Optional[DreamSettings], run: RunOptions, dreamer: Optional[Dreamer]) -> Dreamer:
    """The caller's dreamer, or one built (model loaded once) for `settings` (default preset)."""
    if dreamer is not None:
        return dreamer
    settings = settings or settings_from_preset()
    guide = {"guide_image": read_image(settings.guide)} if settings.guide else {}
    return Dreamer(settings, run.device, run.weights, precision=run.precision, **guide)


def frame_settings(dreamer: Dreamer, other, vary: Optional[Mapping[str, Varying]], frames: int,
                   fps: Fraction, audio_path: Optional[str] = None, audio_frames: int = 0) -> FrameSettings:
    """Per-frame settings over the dreamer's settings and `other` (Video/ZoomSettings), with the
    values in `vary` bound to the render (frame count, fps, seed, and the sound when asked for)."""
    fs = FrameSettings(dreamer.settings, other, vary)
    if fs.constant:
        return fs
    loudness = beat = None
    if fs.needs_audio and audio_path:
        from ..io.audio import frame_envelope
        loudness, beat = frame_envelope(audio_path, fps, audio_frames)
    return fs.bind(RenderContext(frames, fps, dreamer.settings.seed, loudness, beat))


def per_frame_kwargs(fs: FrameSettings, dream: DreamSettings) -> dict:
    """Keyword for the dreamer when settings vary per frame (none when they don't)."""
    return {} if fs.constant else {"settings": dream}
