"""Two torchrun agents, one process each, meeting through the c10d rendezvous: the multi-node launch
(``torchrun --nnodes 2 --rdzv-backend c10d``) on one machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import ROOT, free_port, make_sr_pairs, train_options, write_options

pytestmark = pytest.mark.slow  # 11 s on a quiet 2-core machine, 23 s on a loaded one


def _agent(cfg: Path, root: Path, endpoint: str, run_id: str, log: Path) -> subprocess.Popen:
    """One ``torchrun --nnodes 2 --nproc-per-node 1`` agent (one "node") training ``cfg`` on the CPU."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
           "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", run_id,
           str(ROOT / "train.py"), "-opt", str(cfg), "--root", str(root), "--launcher", "pytorch"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=root)


def test_two_nodes_c10d_rendezvous_train(tmp_path: Path) -> None:
    data = make_sr_pairs(tmp_path / "data", n=4, size=32, scale=2)
    opt = train_options(data, "two_nodes", **{"train.total_iter": 4, "val.val_freq": 4,
                                              "dist_params": {"backend": "gloo", "timeout": 120}})
    cfg = write_options(opt, tmp_path / "two_nodes.yml")
    endpoint = f"localhost:{free_port()}"
    logs = [tmp_path / f"node{i}.log" for i in range(2)]
    agents = [_agent(cfg, tmp_path, endpoint, "restoration-two-nodes", log) for log in logs]
    try:
        codes = [agent.wait(timeout=300) for agent in agents]
    finally:
        for agent in agents:
            if agent.poll() is None:
                agent.kill()
    outputs = [log.read_text() for log in logs]
    assert codes == [0, 0], "\n\n".join(out[-3000:] for out in outputs)
    exp = tmp_path / "experiments" / "two_nodes"
    logs_written = list(exp.glob("train_two_nodes_*.log"))
    assert len(logs_written) == 1  # both "nodes" have LOCAL_RANK 0; only global rank 0 writes
    log = logs_written[0].read_text()
    assert "world 2" in log and "validation tiny_val @ iter 4: psnr" in log
    # rank 0 alone writes: one experiment folder, one set of weights
    assert sorted(p.name for p in (tmp_path / "experiments").iterdir()) == ["two_nodes"]
    assert sorted(p.name for p in (exp / "models").iterdir()) == ["net_g_2.pth", "net_g_4.pth", "net_g_latest.pth"]
    state = torch.load(exp / "training_states" / "4.state", weights_only=True)
    assert state["world_size"] == 2 and len(state["rng"]) == 2
