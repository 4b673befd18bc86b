"""The option-file schema: every key the framework reads, its type and its default.

Sections whose content depends on a registered component (``network_g``, each dataset, losses, metrics)
are checked against that component instead (its ``__init__`` signature and ``check_options``), see
:mod:`restoration.options.validate`.
"""

from __future__ import annotations

from restoration.schema import ANY_MAPPING, COMPONENT, Key, all_defaults
from restoration.settings import DIST, LOGGER, TRAIN, VAL

__all__ = ["TOP_LEVEL", "TRAIN", "VAL", "LOGGER", "DIST", "all_defaults"]

PATH = {
    "pretrain_network_g": Key((str,), doc="weights to start from (any format load_weights accepts)"),
    "param_key_g": Key((str,), doc="'params' / 'params_ema' / None = automatic"),
    "strict_load_g": Key((bool,), default=True, doc="require identical key sets"),
    "pretrain_network_d": Key((str,), doc="weights of network_d to start from (e.g. a released discriminator)"),
    "param_key_d": Key((str,), doc="'params' / 'params_ema' / None = automatic, for network_d"),
    "strict_load_d": Key((bool,), default=True, doc="require identical key sets for network_d"),
    "resume_state": Key((str,), doc="a training_states/<iter>.state file to resume from"),
    "experiments_root": Key((str,), doc="where experiments/<name> lives (default ./experiments/<name>)"),
    "results_root": Key((str,), doc="where test results go (default ./results/<name>)"),
    "tb_logger_root": Key((str,), doc="tensorboard folder (default ./tb_logger/<name>)"),
    # Filled in by the framework (resolved options are saved with them and can be re-used):
    **{k: Key((str,), doc="resolved by the framework") for k in (
        "models", "training_states", "visualization", "log", "options", "tb_logger", "results_root")},
}

TOP_LEVEL: dict[str, Key] = {
    "name": Key((str,), required=True, doc="experiment name (folder name)"),
    "model_type": Key((str,), default="SRModel", doc="registered trainer"),
    "scale": Key((int,), default=1, doc="upscaling factor (1 for restoration)"),
    "num_gpu": Key((int, str), default="auto", doc="'auto' (every visible GPU, else the CPU) or a count "
                   "(under torchrun/srun the job's: each rank drives one); 0 = CPU"),
    "manual_seed": Key((int,), default=0, doc="seed of every random generator"),
    "demo_data": Key((dict,), children={
        "root": Key((str,), default="datasets/demo"),
        "scale": Key((int,), default=2),
    }, doc="build the embedded demo dataset (scikit-image pictures) before starting"),
    "datasets": Key((dict,), default={}, kind=ANY_MAPPING, doc="phase -> dataset options (train, val_1, test_1, ...)"),
    "network_g": Key((dict,), required=True, kind=COMPONENT, doc="the network: {type: SwinIR, ...kwargs}"),
    "network_d": Key((dict,), kind=COMPONENT, doc="a second network for trainers that use one (e.g. a discriminator)"),
    "baselines": Key((list,), default=[], doc="test.py: extra networks evaluated beside network_g, e.g. [{type: Bicubic, upscale: 4}]"),
    "path": Key((dict,), default={}, children=PATH),
    "train": Key((dict,), children=TRAIN),
    "val": Key((dict,), children=VAL),
    "logger": Key((dict,), default={}, children=LOGGER),
    "dist_params": Key((dict,), default={}, children=DIST),
}

