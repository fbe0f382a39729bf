"""A real two-node Ray cluster on this machine (``ray start --head`` plus ``ray start --address``,
token auth on), one film rendered over both nodes by the CLI, and faults a cluster has: the
non-head node's raylet killed mid-render. Each node has one CPU, so each holds one worker."""

import glob
import secrets
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray", reason="the 'ray' extra (in [test]) is not installed")

from conftest import make_video  # noqa: E402
from dreamvid.pipeline.segments import plan_segments  # noqa: E402
from dreamvid.store.checkpoint import checkpoint_folder  # noqa: E402
from test_ray import frames_of, one_process  # noqa: E402

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _ray_bin():
    return os.path.join(os.path.dirname(sys.executable), "ray")


def _process_table():
    """{pid: (parent pid, command line)} of every process now."""
    table = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            args = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
            ppid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        table[int(pid)] = (ppid, args)
    return table


def _with_descendants(pids, table):
    """pids and every process below them in table."""
    found = set(pids)
    while True:
        more = {pid for pid, (ppid, _) in table.items() if ppid in found} - found
        if not more:
            return found
        found |= more


class Cluster:
    """Two nodes, token auth (RAY_AUTH_MODE=token; a token generated into this test's folder,
    RAY_AUTH_TOKEN_PATH, where both nodes and the driver read it)."""

    def __init__(self, tmp: Path):
        self.token = tmp / "auth_token"
        # The GCS declares a silent node dead after 2 missed health checks 0.5 s apart (default: 5
        # of 3 s), so the test need not render for half a minute after the kill.
        self.env = dict(os.environ, RAY_AUTH_TOKEN_PATH=str(self.token), RAY_AUTH_MODE="token",
                        RAY_USAGE_STATS_ENABLED="0", RAY_health_check_period_ms="500",
                        RAY_health_check_timeout_ms="500", RAY_health_check_failure_threshold="2")
        self.token.write_text(secrets.token_hex(32))  # what `ray get-auth-token --generate` makes
        self.token.chmod(0o600)
        self.port, head_nm, head_om, node_nm, node_om = _free_ports(5)
        self.address = f"127.0.0.1:{self.port}"
        self.node_manager_port = node_nm
        temp = self.temp = str(tmp / "ray")
        common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
        self._ray("start", "--head", f"--port={self.port}", "--include-dashboard=false", f"--temp-dir={temp}",
                  f"--node-manager-port={head_nm}", f"--object-manager-port={head_om}",
                  "--min-worker-port=20000", "--max-worker-port=20200", *common)
        self._ray("start", f"--address={self.address}", f"--node-manager-port={node_nm}",
                  f"--object-manager-port={node_om}", "--min-worker-port=20201", "--max-worker-port=20400", *common)

    def _ray(self, *args):
        proc = subprocess.run([_ray_bin(), *args], env=self.env, capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    def raylet_pid(self, node_manager_port):
        out = subprocess.run(["pgrep", "-f", f"raylet.*--node_manager_port={node_manager_port}"],
                             capture_output=True, text=True).stdout.split()
        assert len(out) == 1, out
        return int(out[0])

    def rendering_on(self, node_manager_port):
        """Whether that node's worker is inside a render call now: a process under its raylet
        titled as Ray titles an actor's running method."""
        table = _process_table()
        under = _with_descendants({self.raylet_pid(node_manager_port)}, table)
        return any(table[pid][1].startswith("ray::Worker.render") for pid in under if pid in table)

    def processes(self):
        """This cluster's processes: those naming its temp folder, and their descendants (not
        `ray stop`, which would end every Ray on the machine)."""
        table = _process_table()
        return _with_descendants({pid for pid, (_, args) in table.items() if self.temp in args}, table)

    def stop(self):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # daemons that restart a dead child: until none is left
            left = self.processes()
            if not left:
                return
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    yield c
    c.stop()


def test_the_worker_nodes_raylet_killed_mid_render_frames_identical(cluster, tmp_path):
    """SIGKILL of the second node (its raylet and the processes under it) while its worker renders:
    the head's worker resumes that segment from its checkpoint, the film equals the undisturbed one."""
    import torch
    assert cluster.token.stat().st_size == 64 and cluster.env["RAY_AUTH_MODE"] == "token"
    clip = make_video(tmp_path, size="128x96", frames=36)
    out = str(tmp_path / "film") + "/"
    args = [sys.executable, "-m", "dreamvid", clip, "-o", out, "--ray-address", cluster.address, "--workers", "2",
            "--segment-frames", "12", "--warmup", "2", "--seam-fade", "3", "--chunk-frames", "0",
            "--iterations", "1", "--octaves", "1", "--device", "cpu"]
    driver = subprocess.Popen(args, env=cluster.env, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    segments = os.path.join(checkpoint_folder(out, None), "segments")
    deadline = time.monotonic() + 240
    # Killed as soon as that worker is in its render call, with its segment's frames still ahead
    # (waiting for frames in both segments let a fast machine finish the segment first: no loss).
    while (not glob.glob(os.path.join(segments, "*", "frame_*.png"))
           or not cluster.rendering_on(cluster.node_manager_port)):
        assert driver.poll() is None, driver.communicate()
        assert time.monotonic() < deadline, "no frame saved"
        time.sleep(0.2)
    # The node dies: its raylet and every process under it at once (killing the raylet alone, its
    # worker sometimes finished the segment before noticing, so nothing was lost to test).
    for pid in _with_descendants({cluster.raylet_pid(cluster.node_manager_port)}, _process_table()):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    stdout, stderr = driver.communicate(timeout=400)
    assert driver.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "worker died while rendering frames" in stderr
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref = one_process(clip, plan_segments(0, 36, [], 12, 2, fade=3), tmp_path)
    finally:
        torch.set_num_threads(before)
    got = frames_of(out)
    assert len(got) == 36 and all(np.array_equal(a, b) for a, b in zip(got, ref))

