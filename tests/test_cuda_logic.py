"""The CUDA-only decisions of the ascent (engine/cuda_step.py), run where they can: on the CPU.

Tiling from a memory budget, when to graph, the eager fallback when a capture raises (on a
machine without CUDA, capturing really raises), and that none of it changes CPU pixels.
"""

import pytest
import torch

from dreamvid.core.rng import make_generator
from dreamvid.engine.ascent import Ascent
from dreamvid.engine.cuda_step import GraphCache, HEADROOM, PEAK_PER_SAVED, needs_tiling, saved_bytes_per_pixel, use_graphs
from dreamvid.engine.models import load_model
from dreamvid.engine.objectives import build_objective
from dreamvid.engine.precision import FP32, Precision

GIB = 1024 ** 3


@pytest.fixture(scope="module")
def lite():
    m = load_model("efficientnet_lite0", None, "cpu")
    return m, build_objective(m, (("block3", 1.0),))


def test_cpu_keeps_its_tile_rule_whatever_the_memory():
    assert needs_tiling((1080, 1920), 1024, "cpu", 100 * GIB, 10.0)
    assert not needs_tiling((720, 1024), 1024, "cpu", 1, 1e9)
    assert needs_tiling((1080, 1920), 1024, "cuda")  # no budget known: the same rule


def test_cuda_tiles_only_what_does_not_fit_the_budget():
    per_pixel = 5000.0  # bytes autograd saves per input pixel
    need = 1080 * 1920 * per_pixel * PEAK_PER_SAVED
    assert not needs_tiling((1080, 1920), 1024, "cuda", int(need / HEADROOM) + 1, per_pixel)
    assert needs_tiling((1080, 1920), 1024, "cuda", int(need / HEADROOM) - 1, per_pixel)
    assert needs_tiling((2160, 3840), 1024, "cuda", int(need / HEADROOM) + 1, per_pixel)  # 4x the pixels


def test_graphs_only_on_cuda_untiled_and_unscaled():
    bf16, fp16 = Precision("bf16", "cuda"), Precision("fp16", "cuda")
    assert use_graphs("cuda", False, bf16) and use_graphs("cuda", False, FP32)
    assert not use_graphs("cuda", True, bf16)          # tiles: shapes change with the offsets
    assert not use_graphs("cuda", False, fp16)         # loss scaling checks the gradient on the host
    assert not use_graphs("cpu", False, FP32)
    assert not use_graphs("cuda", False, bf16, enabled=False)


def test_a_failed_capture_falls_back_to_the_eager_step_once_per_shape(lite):
    m, obj = lite
    ascent = Ascent(m, obj, 1024)
    x = torch.rand(1, 3, 64, 96, generator=make_generator(0))
    cache = GraphCache()
    loss, grad = cache.run((m, obj), ascent._region, x)  # capturing needs CUDA: it raises here
    ref_loss, ref_grad = ascent._region(x)
    assert torch.equal(grad, ref_grad) and torch.equal(loss, ref_loss)
    assert len(cache.failures) == 1
    (reason,) = cache.failures.values()
    assert reason  # the exception, named
    cache.run((m, obj), ascent._region, x)
    assert len(cache.failures) == 1  # not tried again for that shape
    cache.run((m, obj), ascent._region, x[..., :32, :64])
    assert len(cache.failures) == 2  # another shape is its own graph


def test_saved_bytes_per_pixel_scale_with_the_image(lite):
    m, obj = lite
    step = Ascent(m, obj, 1024)._region
    small, large = saved_bytes_per_pixel(step, torch.device("cpu"), 64), saved_bytes_per_pixel(step, torch.device("cpu"), 128)
    assert small > 12 * 4  # at least the input and a few float32 activations per pixel
    assert abs(large / small - 1) < 0.25  # per pixel: the budget can extrapolate to 1080p


def test_a_budget_and_graph_cache_change_nothing_on_the_cpu(lite):
    m, obj = lite
    x = torch.rand(1, 3, 96, 160, generator=make_generator(1))
    plain = Ascent(m, obj, 128)
    given = Ascent(m, obj, 128, graphs=GraphCache())
    assert plain.tiled(x) and given.tiled(x)
    (la, ga), (lb, gb) = plain(x, make_generator(2)), given(x, make_generator(2))
    assert la == lb and isinstance(la, float) and torch.equal(ga, gb)
