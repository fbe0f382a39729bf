"""The page's layout: the Gradio Blocks with one tab per kind (Image, Video, Zoom loop), their
fields, buttons, status and results, and the handlers that turn them into jobs; the Live tab
is live.py's."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

from ...config.presets import DEFAULT_PRESET, PRESETS, get_preset
from ...config.settings import (DEFAULT_LAYERS, FLOW_METHODS, PREVIEW_COUNT, MaskSettings, VideoSettings,
                                ZoomSettings)
from ...errors import Cancelled, DreamvidError
from .api import _api_function, _takes_request
from .fields import LABELS, SCHEDULE_INFO, TAB_FIELDS, error_text, preset_hints
from .jobs import Jobs, Update, _upload_path
from .live import LiveHub, build_live_tab
from .status import IDLE_HTML

#: Bundled samples (present in a source checkout; the page lists the ones it finds).
SAMPLES = Path(__file__).resolve().parents[3] / "samples"

CSS = """
.dv-status { min-height: 4.5em; }
.dv-bar { height: 10px; border-radius: 5px; background: var(--neutral-200); overflow: hidden; margin: 4px 0 8px; }
.dv-bar > div { height: 100%; background: var(--color-accent); transition: width .3s; }
.dv-status[data-state=error] .dv-line:last-child { color: var(--error-text-color); font-weight: 600; }
.dv-status[data-state=stopped] .dv-line:last-child { font-weight: 600; }
.dv-line { margin: 2px 0 !important; font-size: var(--text-md); }
.dv-probe { font-size: var(--text-sm); min-height: 1.5em; }
.dv-hint { font-size: var(--text-sm); color: var(--body-text-color-subdued); }
footer { display: none !important; }
#live-output img { width: 100%; height: 100%; object-fit: contain; image-rendering: auto; }
"""


def _describe_upload(kind: str, upload: Any) -> str:
    """One line about an upload (size, frames, sound), or what is wrong with it."""
    path = _upload_path(upload)
    if path is None:
        return ""
    name = os.path.basename(path)
    try:
        if os.path.getsize(path) == 0:
            raise DreamvidError(f"the upload {name} is empty (0 bytes): upload the file again")
        if kind == "video":
            from ...io.sources import open_source
            src = open_source(path)
            sound = ", with sound" if getattr(src, "has_audio", False) else ""
            short = (f" (the file ends at frame {src.num_frames} of the {src.promised_frames} it promises)"
                     if src.promised_frames else "")
            return (f"{name}: {src.width}×{src.height}, {src.num_frames} frames at {float(src.fps):.3g} fps"
                    f"{sound}{short}")
        from ...io.images import read_image
        h, w = read_image(path).shape[:2]
        return f"{name}: {w}×{h}"
    except DreamvidError as e:
        return "⚠ " + error_text(e).replace(path, name)


def build_app(jobs: Jobs, live: Optional[LiveHub] = None):
    """The Gradio Blocks of the page (not launched); `live`: the Live tab's sessions (a new hub when None)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr
    live = live or LiveHub(jobs)

    from ...io.images import IMAGE_EXTS

    presets = [(f"{p.name} — {p.description}", p.name) for p in PRESETS.values()]
    models = [("the preset's", "")] + [(m, m) for m in DEFAULT_LAYERS]
    hints = preset_hints(DEFAULT_PRESET)
    samples = {"image": SAMPLES / "coffee.jpg", "video": SAMPLES / "bunny.mp4", "zoom": SAMPLES / "coffee.jpg"}
    vdef, zdef, mdef = VideoSettings(**get_preset(DEFAULT_PRESET).video), ZoomSettings(), MaskSettings()

    def session_of(request) -> str:
        return getattr(request, "session_hash", None) or "local"

    def steps(kind: str, values: Dict[str, Any], request, api: bool = False) -> Iterator[Update]:
        """Job updates, with the library's errors as gr.Error (page and API alike). A stop is an
        error for API callers (no result); the page has shown it in the status already."""
        try:
            yield from jobs.run(kind, values, session_of(request))
        except Cancelled as e:
            if api:
                raise gr.Error(str(e), title="Stopped", print_exception=False) from None
        except DreamvidError as e:
            raise gr.Error(str(e), duration=20, print_exception=False) from None

    with gr.Blocks(title="dreamvid", analytics_enabled=False, delete_cache=(3600, 86400)) as demo:
        gr.Markdown("# dreamvid\nDeepDream for images, videos and endless zoom loops, on this machine. "
                    "Cancel keeps a video's or loop's finished frames: press Dream again with the same "
                    "settings and it resumes where it stopped.")
        for kind, title in (("image", "Image"), ("video", "Video"), ("zoom", "Zoom loop")):
            with gr.Tab(title, id=kind, elem_id=f"{kind}-tab"):
                c: Dict[str, Any] = {}
                with gr.Row():
                    with gr.Column(scale=1):
                        c["upload"] = gr.File(
                            label={"image": "Photo", "video": "Video", "zoom": "Start image"}[kind],
                            file_types=list(IMAGE_EXTS) if kind != "video" else None,
                            type="filepath", elem_id=f"{kind}-upload", height=110)
                        probe = gr.Markdown("", elem_id=f"{kind}-probe", elem_classes="dv-probe")
                        if samples[kind].is_file():
                            gr.Examples([[str(samples[kind])]], inputs=[c["upload"]], label="Sample",
                                        elem_id=f"{kind}-samples")
                        if kind == "zoom":
                            c["begin"] = gr.Textbox(value="", label=LABELS["begin"], placeholder="noise, or a colour like #203040",
                                                    info="used when no image is uploaded", elem_id="zoom-begin")
                        c["preset"] = gr.Dropdown(presets, value=DEFAULT_PRESET, label=LABELS["preset"],
                                                  elem_id=f"{kind}-preset")
                        c["model"] = gr.Dropdown(models, value="", label=LABELS["model"],
                                                 info=f"preset: {hints['model']}", elem_id=f"{kind}-model")
                        with gr.Row():
                            dream_btn = gr.Button("Dream", variant="primary", elem_id=f"{kind}-dream")
                            preview_btn = (gr.Button("Preview", elem_id="video-preview-button")
                                           if kind == "video" else None)
                            cancel_btn = gr.Button("Cancel", variant="stop", elem_id=f"{kind}-cancel")
                        sched = "" if kind == "image" else " · schedulable"
                        with gr.Accordion("Dream settings", open=True):
                            gr.Markdown(SCHEDULE_INFO if kind != "image" else "Blank fields take the preset's value.",
                                        elem_classes="dv-hint")
                            with gr.Row():
                                c["step"] = gr.Textbox(value="", label=LABELS["step"], placeholder=hints["step"],
                                                       info=f"ascent step{sched}", elem_id=f"{kind}-step")
                                c["iterations"] = gr.Textbox(value="", label=LABELS["iterations"], placeholder=hints["iterations"],
                                                             info=f"per octave{sched}", elem_id=f"{kind}-iterations")
                                c["octaves"] = gr.Textbox(value="", label=LABELS["octaves"], placeholder=hints["octaves"],
                                                          info=f"pyramid depth{sched}", elem_id=f"{kind}-octaves")
                            with gr.Row():
                                c["layers"] = gr.Textbox(value="", label=LABELS["layers"], placeholder=hints["layers"],
                                                         info="LAYER=WEIGHT, comma-separated", elem_id=f"{kind}-layers")
                                c["seed"] = gr.Textbox(value="", label=LABELS["seed"],
                                                      placeholder=hints["seed"], elem_id=f"{kind}-seed")
                                side = {"image": "full size", "video": "full size",
                                        "zoom": str(zdef.max_side)}[kind]
                                c["max_side"] = gr.Textbox(value="", label=LABELS["max_side"],
                                                          placeholder=side, info="longest side, px",
                                                          elem_id=f"{kind}-max-side")
                        if kind == "video":
                            with gr.Accordion("Video settings", open=True):
                                with gr.Row():
                                    c["start"] = gr.Textbox(value="", label=LABELS["start"],
                                                           placeholder=str(vdef.start), elem_id="video-start")
                                    c["end"] = gr.Textbox(value="", label=LABELS["end"],
                                                         placeholder="the end", elem_id="video-end")
                                    c["flow"] = gr.Dropdown(list(FLOW_METHODS), value=vdef.flow, label=LABELS["flow"],
                                                            elem_id="video-flow")
                                with gr.Row():
                                    c["blend"] = gr.Textbox(value="", label=LABELS["blend"], placeholder=f"{vdef.blend:g}",
                                                            info=f"carried dream{sched}", elem_id="video-blend")
                                    c["next_iterations"] = gr.Textbox(value="",
                                        label=LABELS["next_iterations"], elem_id="video-next-iterations",
                                        placeholder=f"{vdef.next_iteration_ratio:.0%} of the first's",
                                        info=f"per octave{sched}")
                        if kind == "zoom":
                            with gr.Accordion("Zoom settings", open=True):
                                with gr.Row():
                                    c["frames"] = gr.Textbox(value="", label=LABELS["frames"],
                                                            placeholder=str(zdef.frames), elem_id="zoom-frames")
                                    c["zoom"] = gr.Textbox(value="", label=LABELS["zoom"], placeholder=f"{zdef.zoom:g}",
                                                           info="schedulable", elem_id="zoom-zoom")
                                    c["rotate"] = gr.Textbox(value="", label=LABELS["rotate"], placeholder=f"{zdef.rotate:g}",
                                                             info="degrees · schedulable", elem_id="zoom-rotate")
                                with gr.Row():
                                    c["frame_iterations"] = gr.Textbox(value="",
                                        label=LABELS["frame_iterations"], placeholder=str(zdef.frame_iterations),
                                        info="schedulable", elem_id="zoom-frame-iterations")
                                    c["frame_octaves"] = gr.Textbox(value="",
                                        label=LABELS["frame_octaves"], placeholder=str(zdef.frame_octaves),
                                        info="schedulable", elem_id="zoom-frame-octaves")
                                    c["steady"] = gr.Textbox(value="", label=LABELS["steady"], placeholder=f"{zdef.steady:g}",
                                                             info="0..1 · schedulable", elem_id="zoom-steady")
                                c["loop"] = gr.Checkbox(value=zdef.loop, label=LABELS["loop"], elem_id="zoom-loop")
                        with gr.Accordion("Mask (optional): dream only part of the picture", open=False,
                                          elem_id=f"{kind}-mask-settings"):
                            gr.Markdown("White = dream, black = keep the input, grey between"
                                        + (": an image for every frame, or a video with one mask per frame."
                                           if kind == "video" else "."), elem_classes="dv-hint")
                            c["mask"] = gr.File(label=LABELS["mask"], type="filepath", height=110,
                                                file_types=None if kind == "video" else list(IMAGE_EXTS),
                                                elem_id=f"{kind}-mask")
                            with gr.Row():
                                c["mask_feather"] = gr.Textbox(value="", label=LABELS["mask_feather"],
                                                               placeholder=f"{mdef.feather:g}", info="px, softens the edges",
                                                               elem_id=f"{kind}-mask-feather")
                                c["mask_strength"] = gr.Textbox(value="", label=LABELS["mask_strength"],
                                                                placeholder=f"{mdef.strength:g}",
                                                                info=f"0 = off, 1 = as drawn{sched}",
                                                                elem_id=f"{kind}-mask-strength")
                                c["invert_mask"] = gr.Checkbox(value=mdef.invert, label=LABELS["invert_mask"],
                                                               elem_id=f"{kind}-invert-mask")
                        if kind == "video":
                            with gr.Accordion("Preview sheet", open=False, elem_id="video-preview-settings"):
                                gr.Markdown("Preview dreams a few frames at a small size, as the render's first "
                                            "frame would be, and lays them out in a grid: a look before the long "
                                            "render.", elem_classes="dv-hint")
                                preview_frames = gr.Textbox(value="", label=LABELS["preview_frames"],
                                                            placeholder=f"{PREVIEW_COUNT}, spread over the range",
                                                            info="a count, or frame indices like 0, 24, 48",
                                                            elem_id="video-preview-frames")
                    with gr.Column(scale=1):
                        status = gr.HTML(IDLE_HTML, elem_id=f"{kind}-status")
                        preview = None
                        if kind != "image":
                            preview = gr.Image(label="Latest frame", type="numpy", interactive=False,
                                               elem_id=f"{kind}-preview", height=340, format="jpeg")
                        sheet = None
                        if kind == "video":
                            # No label over it: the sheet labels its own cells (frame, preset).
                            sheet = gr.Image(label="Preview sheet", show_label=False, type="filepath",
                                             interactive=False, elem_id="video-sheet", format="png")
                            result = gr.Video(label="Dreamed video", interactive=False, elem_id=f"{kind}-result")
                        else:
                            result = gr.Image(label="Dreamed loop" if kind == "zoom" else "Dreamed image",
                                              type="filepath", interactive=False, elem_id=f"{kind}-result")
                        download = gr.File(label="Download", interactive=False, elem_id=f"{kind}-download", height=90)

                inputs = [c[name] for name in TAB_FIELDS[kind]]
                outputs = [status] + ([preview] if preview is not None else []) + [result, download]

                def ui_run(request: gr.Request, *values, _kind=kind, _preview=preview is not None):
                    for u in steps(_kind, dict(zip(TAB_FIELDS[_kind], values)), request):
                        out = [u.status]
                        if _preview:
                            out.append(None if u.clear else u.preview if u.preview is not None else gr.skip())
                        res = None if u.clear else u.result if u.result else gr.skip()
                        out += [res, res]
                        yield tuple(out)

                def ui_arm(request: gr.Request):
                    jobs.arm(session_of(request))

                def ui_cancel(request: gr.Request):
                    jobs.cancel(session_of(request))

                def ui_preset(name, _kind=kind):
                    h = preset_hints(name)
                    return (gr.update(info=f"preset: {h['model']}"),
                            *(gr.update(placeholder=h[f]) for f in ("step", "iterations", "octaves", "layers")),
                            gr.update(placeholder=h["seed"]))

                for fn in (ui_run, ui_arm, ui_cancel):
                    _takes_request(fn, gr)
                c["upload"].change(lambda f, _kind=kind: _describe_upload(_kind, f), c["upload"], probe,
                                   concurrency_limit=None, api_visibility="private", show_progress="hidden")
                c["preset"].change(ui_preset, c["preset"],
                                   [c["model"], c["step"], c["iterations"], c["octaves"], c["layers"], c["seed"]],
                                   concurrency_limit=None, api_visibility="private", show_progress="hidden")
                dream_btn.click(ui_arm, None, None, concurrency_limit=None, api_visibility="private",
                                show_progress="hidden").then(
                    ui_run, inputs, outputs, concurrency_id="device", concurrency_limit=1,
                    api_visibility="private", show_progress="minimal", show_progress_on=[status])
                cancel_btn.click(ui_cancel, None, None, concurrency_limit=None, api_visibility="private",
                                 show_progress="hidden")
                if preview_btn is not None:
                    def ui_preview(request: gr.Request, *values):
                        fields = TAB_FIELDS["video"] + ("preview_frames",)
                        for u in steps("preview", dict(zip(fields, values)), request):
                            yield (u.status, None if u.clear else u.preview if u.preview is not None else gr.skip(),
                                   None if u.clear else u.result if u.result else gr.skip())

                    _takes_request(ui_preview, gr)
                    preview_btn.click(ui_arm, None, None, concurrency_limit=None, api_visibility="private",
                                      show_progress="hidden").then(
                        ui_preview, inputs + [preview_frames], [status, preview, sheet], concurrency_id="device",
                        concurrency_limit=1, api_visibility="private", show_progress="minimal",
                        show_progress_on=[status])

                # The API endpoint: the same fields, the result file only.
                api_fn = _api_function(kind, steps, gr)
                api_btn = gr.Button(visible=False, elem_id=f"{kind}-api")
                api_btn.click(api_fn, inputs, result, concurrency_id="device", concurrency_limit=1,
                              api_name={"image": "dream_image", "video": "dream_video", "zoom": "zoom_loop"}[kind])
        build_live_tab(gr, live, session_of)
    demo.queue(default_concurrency_limit=1)
    return demo
