"""Sound as numbers per frame, for schedules: loudness (``a``) and beats (``beat``).

``frame_envelope(path, fps, frames)`` decodes the first audio track with the ffmpeg binary (mono,
float32 PCM through a pipe, 22050 Hz) and returns two arrays of one value per frame, both in 0..1:

- loudness: the RMS of the samples under each frame (frame i covers [i/fps, (i+1)/fps) after
  `start_s`), through a peak follower (rises at once, halves every :data:`RELEASE_S` seconds) so
  it swells with the sound and settles without flicker, divided by its maximum (0 throughout for
  silence or a track quieter than -80 dBFS).
- beat: 1 on each frame in which an onset starts, halving every :data:`BEAT_HALF_LIFE_S` seconds
  after it (every 2.4 frames at 24 fps; the look does not change with fps). Onsets are peaks of
  the spectral flux (the summed rise of log-compressed STFT magnitudes, log(1 + |X|): 512-sample Hann windows
  every 128 samples, 5.8 ms) above an adaptive threshold (the local median over ±0.1 s, times
  1.5, plus a tenth of the largest flux), at least :data:`MIN_GAP_S` apart.
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from typing import List, Optional, Tuple, Union

import numpy as np

from ..errors import DreamvidError
from .ffmpeg import _ffmpeg_path, _last_error_line, ffmpeg_exe, probe

RATE = 22050            # decoding rate (Hz): plenty for loudness and onsets
RELEASE_S = 0.15        # loudness: half-life of the peak follower's fall
BEAT_HALF_LIFE_S = 0.1  # beat: half-life of the decay after an onset
MIN_GAP_S = 0.05        # onsets closer than this are one onset
SILENCE_RMS = 1e-4      # -80 dBFS: quieter than this is silence
_WIN, _HOP = 512, 128   # STFT window and hop (samples at RATE)

FpsLike = Union[float, int, Fraction]


def decode_audio(path: str, rate: int = RATE, start_s: float = 0.0,
                 duration_s: Optional[float] = None) -> np.ndarray:
    """The first audio track of `path` from `start_s` on (`duration_s` long, or to its end),
    downmixed to mono float32 at `rate` Hz: shape (N,). DreamvidError if there is no audio."""
    if not probe(path).has_audio:
        raise DreamvidError(f"{path} has no audio track (give a file with sound)")
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error"]
    if start_s > 0:
        cmd += ["-ss", f"{start_s:.6f}"]
    cmd += ["-i", _ffmpeg_path(path), "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(rate)]
    if duration_s is not None:
        cmd += ["-t", f"{max(duration_s, 0.0):.6f}"]
    cmd += ["-f", "f32le", "-"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise DreamvidError(f"ffmpeg failed decoding the audio of {path}: "
                            f"{_last_error_line(proc.stderr.decode('utf-8', 'replace'))}")
    return np.frombuffer(proc.stdout, dtype=np.float32).copy()


def frame_rms(samples: np.ndarray, rate: int, fps: FpsLike, frames: int) -> np.ndarray:
    """RMS of the samples under each frame: (frames,) float64; 0 where the sound has ended."""
    bounds = np.round(np.arange(frames + 1) * (rate / float(fps))).astype(np.int64)
    sq = np.concatenate([[0.0], np.cumsum(samples.astype(np.float64) ** 2)])
    lo, hi = np.minimum(bounds[:-1], len(samples)), np.minimum(bounds[1:], len(samples))
    n = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, (sq[hi] - sq[lo]) / np.maximum(n, 1), 0.0)
    return np.sqrt(np.maximum(mean, 0.0))


def spectral_flux(samples: np.ndarray, rate: int = RATE) -> Tuple[np.ndarray, float]:
    """Onset strength: (flux per hop, hops per second). Hop k is centred on sample k * hop."""
    if len(samples) <= _WIN // 2:
        return np.zeros(0), rate / _HOP
    # Mirrored ends: a sound that is already playing at the start is no onset.
    x = np.pad(samples.astype(np.float32), (_WIN // 2, _WIN // 2), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(x, _WIN)[::_HOP] * np.hanning(_WIN).astype(np.float32)
    mag = np.log1p(np.abs(np.fft.rfft(frames, axis=1)))
    rise = np.maximum(np.diff(mag, axis=0), 0.0).sum(axis=1)
    return np.concatenate([[0.0], rise]), rate / _HOP


def onset_times(samples: np.ndarray, rate: int = RATE) -> List[float]:
    """Times (s) of the onsets in `samples` (see the module doc for the method)."""
    flux, hops = spectral_flux(samples, rate)
    if len(flux) < 3 or flux.max() <= 0:
        return []
    w = max(1, int(round(0.1 * hops)))
    local = np.lib.stride_tricks.sliding_window_view(np.pad(flux, w, mode="edge"), 2 * w + 1)
    threshold = 1.5 * np.median(local, axis=1) + 0.1 * flux.max()
    p = max(1, int(round(0.02 * hops)))  # a peak is the largest within ±20 ms
    peaks = np.lib.stride_tricks.sliding_window_view(np.pad(flux, p, mode="constant"), 2 * p + 1).max(axis=1)
    out: List[float] = []
    for k in np.flatnonzero((flux >= peaks) & (flux > threshold)):
        t = k / hops
        if not out or t - out[-1] >= MIN_GAP_S:
            out.append(float(t))
    return out


def beat_curve(onset_frames, frames: int, fps: FpsLike, half_life_s: float = BEAT_HALF_LIFE_S) -> np.ndarray:
    """1 at each onset frame, halving every `half_life_s` seconds after it: (frames,) float64."""
    hit = np.zeros(frames, dtype=bool)
    idx = [i for i in onset_frames if 0 <= i < frames]
    hit[idx] = True
    decay = 0.5 ** (1.0 / (half_life_s * float(fps)))
    out = np.zeros(frames)
    level = 0.0
    for i in range(frames):
        level = 1.0 if hit[i] else level * decay
        out[i] = level
    return out


def frame_envelope(path: str, fps: FpsLike, frames: int, start_s: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
    """(loudness, beat) of `path`'s first audio track: one value per frame each, in 0..1, frame i
    covering [start_s + i/fps, start_s + (i+1)/fps). Both (frames,) float64; see the module doc."""
    if frames <= 0:
        return np.zeros(0), np.zeros(0)
    samples = decode_audio(path, RATE, start_s, frames / float(fps))
    rms = frame_rms(samples, RATE, fps, frames)
    release = 0.5 ** (1.0 / (RELEASE_S * float(fps)))
    env = np.zeros(frames)
    level = 0.0
    for i in range(frames):
        level = max(rms[i], level * release)
        env[i] = level
    loud = env / env.max() if env.max() >= SILENCE_RMS else np.zeros(frames)
    onset_frames = [int(np.floor(t * float(fps) + 1e-9)) for t in onset_times(samples, RATE)]
    return loud, beat_curve(onset_frames, frames, fps)
