"""The top of every train/test log: versions, the device, translated upstream spellings, the resolved options."""

from __future__ import annotations

import platform
from importlib.metadata import version
from typing import Any, Iterable, Mapping

import torch
import yaml

from restoration.utils.resume_checks import plain

__all__ = ["run_header"]


def run_header(opt: Mapping[str, Any], device: Any, notices: Iterable[str] = ()) -> str:
    """The top of every train/test log, as BasicSR writes it: package versions, the device, the notices of
    translated upstream options, then the resolved options as YAML."""
    try:
        import torchvision  # optional dependency

        vision = torchvision.__version__
    except ImportError:
        vision = "not installed"
    try:
        ours = version("restoration")
    except Exception:  # not installed as a package (a plain checkout on sys.path)
        ours = "unknown (not installed)"
    lines = [f"restoration {ours}, python {platform.python_version()}, torch {torch.__version__}, "
             f"torchvision {vision}"]
    if torch.cuda.is_available():
        lines.append(f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
                     f"{torch.cuda.device_count()} GPU(s): {torch.cuda.get_device_name(0)}")
    lines.append(f"device: {device}")
    lines += [f"option translated: {n}" for n in notices]
    lines.append("options:\n" + yaml.safe_dump(plain(opt), sort_keys=False, default_flow_style=None).rstrip())
    return "\n".join(lines)
