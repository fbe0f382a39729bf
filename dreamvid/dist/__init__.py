"""Distributed rendering: one film over many GPUs or machines, on Ray (the ``ray`` extra).

    from dreamvid.dist import render_distributed
    render_distributed("in.mp4", "out.mp4", workers=4)                 # a local Ray, 4 workers
    render_distributed("in.mp4", "out.mp4", ray_address="auto")        # a running cluster

Modules: api (render_distributed), session (joining Ray), resources (workers per cluster),
run_folder (the checkpoint folder, attempts), hub and worker (the actors), failure (attempts,
stalls), driver (the render's loop). The film's cross-faded seams are in pipeline/film.py.

Importing this package does not import Ray; a render without Ray installed raises
DreamvidError naming the extra (``pip install 'dreamvid[ray]'``).
"""

from .api import render_distributed

__all__ = ["render_distributed"]
