"""io.audio: per-frame loudness and onsets of generated click tracks (exact click times known)."""

import wave

import numpy as np
import pytest

from conftest import ffmpeg, make_video
from dreamvid.errors import DreamvidError
from dreamvid.io.audio import BEAT_HALF_LIFE_S, RATE, decode_audio, frame_envelope, onset_times

CLICKS = [0.31, 0.83, 1.27, 1.90, 2.41, 2.60, 3.33]  # seconds; uneven on purpose (2.41/2.60 close)


def click_track(path, clicks=CLICKS, seconds=4.0, rate=44100, noise=0.01, seed=0):
    """A 16-bit mono WAV: faint noise and a 30 ms decaying 1 kHz click at each time in `clicks`."""
    rng = np.random.default_rng(seed)
    x = noise * rng.standard_normal(int(seconds * rate))
    n = int(0.03 * rate)
    burst = 0.8 * np.exp(-np.arange(n) / (0.005 * rate)) * np.sin(2 * np.pi * 1000 * np.arange(n) / rate)
    for c in clicks:
        i = int(round(c * rate))
        x[i:i + n] += burst[:len(x) - i]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return str(path)


def test_onset_times_match_the_clicks(tmp_path):
    found = onset_times(decode_audio(click_track(tmp_path / "c.wav")))
    assert len(found) == len(CLICKS)
    assert np.max(np.abs(np.array(found) - CLICKS)) < 0.012  # one STFT hop (5.8 ms) and a bit


@pytest.mark.parametrize("fps", [24, 12, 30000 / 1001])
def test_beats_within_one_frame_of_the_clicks(tmp_path, fps):
    frames = int(4.0 * fps)
    loud, beat = frame_envelope(click_track(tmp_path / "c.wav"), fps, frames)
    assert loud.shape == beat.shape == (frames,)
    onsets = np.flatnonzero(beat == 1.0)
    want = [int(c * fps) for c in CLICKS]
    assert len(onsets) == len(want)
    assert np.max(np.abs(onsets - want)) <= 1
    # beat halves every BEAT_HALF_LIFE_S after an onset
    i = onsets[0]
    assert beat[i + 2] == pytest.approx(0.5 ** (2 / (BEAT_HALF_LIFE_S * fps)))
    assert beat[: i].max() == 0.0


def test_loudness_is_normalised_and_follows_the_sound(tmp_path):
    fps = 24
    loud, _ = frame_envelope(click_track(tmp_path / "c.wav"), fps, 96)
    assert loud.min() >= 0.0 and loud.max() == pytest.approx(1.0)
    for c in CLICKS:
        i = int(c * fps)
        assert loud[i : i + 2].max() > 0.5            # swells at a click
    assert loud[: int(CLICKS[0] * fps) - 1].max() < 0.1  # the faint noise before the first


def test_start_offset_and_padding(tmp_path):
    path = click_track(tmp_path / "c.wav")
    fps = 24
    _, beat = frame_envelope(path, fps, 60, start_s=1.0)  # from 1.0 s on: clicks at .27, .9, ...
    onsets = np.flatnonzero(beat == 1.0)
    want = [int((c - 1.0) * fps) for c in CLICKS if 1.0 < c < 1.0 + 60 / fps]
    assert len(onsets) == len(want) and np.max(np.abs(onsets - want)) <= 1
    loud, beat = frame_envelope(path, fps, 200)  # longer than the sound: zeros after its end
    assert loud.shape == (200,) and loud[-10:].max() < 0.05 and beat[-10:].max() < 0.01


def test_silence_and_no_audio(tmp_path):
    silent = click_track(tmp_path / "s.wav", clicks=[], noise=0.0)
    loud, beat = frame_envelope(silent, 24, 24)
    assert not loud.any() and not beat.any()
    video = make_video(tmp_path, frames=3)
    with pytest.raises(DreamvidError, match="no audio track"):
        frame_envelope(video, 24, 3)


def test_compressed_multichannel_track(tmp_path):
    # Clicks every 0.5 s in a 5.1 AAC track (like samples/bunny.mp4): downmixed, decoded, found.
    out = str(tmp_path / "c.mp4")
    expr = "if(lt(mod(t+0.25\\,0.5)\\,0.02)\\,0.8*sin(2*PI*1000*t)\\,0)"
    ffmpeg("-f", "lavfi", "-i", f"aevalsrc={expr}:c=5.1:s=48000:d=2.5", "-c:a", "aac", out)
    fps = 24
    _, beat = frame_envelope(out, fps, 60)
    onsets = np.flatnonzero(beat == 1.0)
    want = [int((0.25 + 0.5 * k) * fps) for k in range(5)]
    assert len(onsets) == 5 and np.max(np.abs(onsets - want)) <= 1
    assert len(decode_audio(out)) == pytest.approx(2.5 * RATE, rel=0.02)
