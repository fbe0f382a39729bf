"""The API (``gradio_client``): endpoints ``/dream_image``, ``/dream_video`` and ``/zoom_loop``
take the file (``handle_file(path)``), a preset name and, optionally, the same fields as the page
(by name; blank = the preset's value), a mask file (``mask=handle_file(path)``, white = dream) with
mask_feather, invert_mask and mask_strength, and return the result file."""

from __future__ import annotations

from typing import Any, Dict, Iterator

from ...config.presets import DEFAULT_PRESET
from .fields import TAB_FIELDS


def _takes_request(fn, gr):
    """Mark fn's `request` parameter as gr.Request: this module's annotations are strings (gradio
    is imported lazily, so Gradio could not resolve them) and Gradio finds it by its type."""
    fn.__annotations__ = {**fn.__annotations__, "request": gr.Request}
    return fn


def _api_function(kind: str, steps, gr):
    """The endpoint's function, with the fields as named parameters (gradio_client passes them by
    name; blank ones take the preset's value)."""

    def finish(values: Dict[str, Any], request) -> Iterator[Any]:
        # A generator, like the page's: Gradio can close it when the client cancels the job
        # (gradio_client's Job.cancel()), which stops the render. Only the last value is the result.
        for u in steps(kind, values, request, api=True):
            if u.result:
                yield u.result
                return
            yield gr.skip()
        raise gr.Error("the job ended without a result")

    if kind == "image":
        def dream_image(image, preset=DEFAULT_PRESET, model="", step="", iterations="", octaves="", layers="",
                        seed="", max_side="", mask=None, mask_feather="", invert_mask=False, mask_strength="",
                        request: gr.Request = None):
            """Dream an image file with a preset (and optional field overrides); returns the PNG."""
            yield from finish(dict(zip(TAB_FIELDS["image"], (image, preset, model, step, iterations, octaves, layers,
                                                         seed, max_side, mask, mask_feather, invert_mask,
                                                         mask_strength))), request)
        return _takes_request(dream_image, gr)
    if kind == "video":
        def dream_video(video, preset=DEFAULT_PRESET, model="", step="", iterations="", octaves="", layers="",
                        seed="", max_side="", blend="", next_iterations="", flow="dis", start="", end="",
                        mask=None, mask_feather="", invert_mask=False, mask_strength="",
                        request: gr.Request = None):
            """Dream a video file; returns the MP4. Resumes a stopped job with the same settings."""
            yield from finish(dict(zip(TAB_FIELDS["video"], (video, preset, model, step, iterations, octaves, layers,
                                                         seed, max_side, blend, next_iterations, flow, start,
                                                         end, mask, mask_feather, invert_mask, mask_strength))),
                              request)
        return _takes_request(dream_video, gr)

    def zoom_loop(image, begin="", preset=DEFAULT_PRESET, model="", step="", iterations="", octaves="", layers="",
                  seed="", max_side="", frames="", zoom="", rotate="", frame_iterations="",
                  frame_octaves="", steady="", loop=True, mask=None, mask_feather="", invert_mask=False,
                  mask_strength="", request: gr.Request = None):
        """An endless zoom loop from an image (or begin='noise' / '#203040'); returns the GIF."""
        yield from finish(dict(zip(TAB_FIELDS["zoom"], (image, begin, preset, model, step, iterations, octaves, layers,
                                                    seed, max_side, frames, zoom, rotate, frame_iterations,
                                                    frame_octaves, steady, loop, mask, mask_feather, invert_mask,
                                                    mask_strength))), request)
    return _takes_request(zoom_loop, gr)
