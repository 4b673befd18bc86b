"""Which signals stop a training run (saving a state first), and ranks that die with their launcher.

The train loop sets a flag on each of :data:`STOP_SIGNALS` and saves a training state at the next
iteration boundary, or between two validation images; DataLoader workers ignore them (the main process
decides, see :class:`~restoration.data.loader.IgnoreStopSignals`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

__all__ = ["STOP_SIGNALS", "die_with_parent"]

#: SIGTERM: slurm's and torchrun's shutdown, ``kill``; SIGINT: Ctrl-C; SIGHUP: the ssh session (or
#: terminal) went away; SIGUSR1: slurm's usual warning before pre-emption (``sbatch --signal=USR1@90``).
#: SIGHUP and SIGUSR1 do not exist on Windows.
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1") if hasattr(signal, name))

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies (``prctl(PR_SET_PDEATHSIG)``).

    For a rank started by a launcher: ``torchrun`` puts each rank in a session of its own, so a SIGKILL to
    the agent (or the agent crashing) would leave the ranks running. With SIGTERM they go through the
    normal stop: save a training state, exit 0.

    Caveats: the kernel sends ``sig`` when the *thread* that started this process exits (torchrun starts
    ranks from its main thread); a parent that died before this call sends nothing, which is checked
    here (a rank whose agent died even earlier fails at the rendezvous, which the agent hosts).

    Returns:
        True when set; False off Linux or where ``prctl`` is unavailable.
    """
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):  # no libc with prctl (e.g. an unusual runtime)
        return False
    if os.getppid() != parent:  # the parent died between the two reads: no signal will come
        os.kill(os.getpid(), sig)
    return True
