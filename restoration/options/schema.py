"""The option-file schema: every key the framework reads, its type and its default.

Sections whose content depends on a registered component (``network_g``, each dataset, losses, metrics)
are checked against that component instead (its ``__init__`` signature and ``check_options``), see
:mod:`restoration.options.validate`.
"""

from __future__ import annotations

from restoration.schema import ANY_MAPPING, COMPONENT, Key, all_defaults

__all__ = ["TOP_LEVEL", "all_defaults"]

_NUM = (int, float)

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

TRAIN = {
    "ema_decay": Key(_NUM, default=0, doc="EMA decay of net_g (0 = no EMA)"),
    "accum_iter": Key((int,), default=1, doc="micro-batches per optimizer step (gradient accumulation): an "
                      "iteration is one step over accum_iter x batch_size_per_gpu samples per GPU"),
    "ema_warmup": Key((bool,), default=True, doc="the EMA decay grows as 1 - iter^(-2/3) up to ema_decay "
                      "(0.99 at iteration 1,000), so a short run's EMA is not mostly its initialisation; false: "
                      "ema_decay from the start (BasicSR)"),
    "optim_g": Key((dict,), required=True, doc="{type, lr, ...}: an optimizer of 'Optimizers' below and its arguments"),
    "scheduler": Key((dict,), doc="{type, ...}: a schedule of 'Learning-rate schedules' below (default constant)"),
    "total_iter": Key((int,), required=True, doc="number of training iterations"),
    "warmup_iter": Key((int,), default=-1, doc="linear learning-rate warm-up iterations (-1 = none)"),
    "batch_augment": Key((list,), default=[], doc="augmentations of each training batch on the device, in order: "
                         "[{type: cutblur, mixup or cutmix, prob, alpha}, ...] (docs/training_toolbox.md)"),
    "losses": Key((list,), doc="losses summed for the step: [{type: <registered loss>, label?, ...kwargs}, ...]"),
    "pixel_opt": Key((dict,), kind=COMPONENT, doc="BasicSR's pixel-loss slot (an entry of losses, label l_pix)"),
    "perceptual_opt": Key((dict,), kind=COMPONENT, doc="BasicSR's perceptual-loss slot (an entry of losses, label l_percep)"),
    "mixed_precision": Key((str, bool), default=False, choices=(False, "bf16", "fp16"),
                           doc="autocast dtype: bf16 (preferred) or fp16 (with a GradScaler)"),
    "grad_clip": Key(_NUM, default=0, doc="clip the gradient norm to this value (0 = off)"),
    "compile": Key((bool,), default=False, doc="torch.compile the network"),
    "channels_last": Key((bool,), default=False, doc="channels_last memory format"),
    "skip_nonfinite": Key((bool,), default=True, doc="skip (and log) steps with a non-finite loss or gradient"),
    "max_skipped_in_a_row": Key((int,), default=100, doc="stop with an error after this many skipped steps in a "
                                "row (0 = never); a run whose every step was skipped always stops with an error"),
    "deterministic": Key((bool,), default=False, doc="deterministic kernels (bit-exact GPU resume; slower): "
                         "torch.use_deterministic_algorithms, cuBLAS workspace, cuDNN deterministic, math SDPA "
                         "and reference neighbourhood attention; off = cudnn.benchmark on"),
    "tf32": Key((bool,), doc="TF32 tensor cores for fp32 matmuls and convolutions (Ampere and newer GPUs); "
                "unset = torch's defaults (convolutions TF32, matmuls full fp32)"),
}

VAL = {
    "val_freq": Key(_NUM, default=5000, doc="validate every N iterations"),
    "save_img": Key((bool,), default=False, doc="save restored validation/test images"),
    "save_grid": Key((bool,), default=True, doc="grid of LQ (upsampled), SR and GT of every validation image: "
                     "<image>_<iter>_grid.png beside the saved image (with save_img) and in tensorboard "
                     "(docs/visualisation.md)"),
    "metrics": Key((dict,), default={}, kind=ANY_MAPPING, doc="{name: {type: calculate_psnr, crop_border, test_y_channel}}"),
    "pbar": Key((bool,), default=False, doc="progress bar during validation"),
    "suffix": Key((str,), doc="suffix of saved image names"),
    "tile": Key((dict,), children={
        "tile_size": Key((int,), required=True, doc="LQ tile size (rounded to the network's multiple)"),
        "tile_overlap": Key((int,), default=32, doc="overlap between tiles, LQ pixels"),
        "tile_batch": Key((int,), default=1, doc="tiles processed at once"),
    }, doc="tiled inference for large images"),
    "self_ensemble": Key((bool,), default=False, doc="x8 self-ensemble (flips/transposes)"),
    "max_images": Key((int,), doc="validate on the first N images only"),
}

LOGGER = {
    "print_freq": Key((int,), default=100, doc="log every N iterations"),
    "save_checkpoint_freq": Key(_NUM, default=5000, doc="save weights and training state every N iterations"),
    "use_tb_logger": Key((bool,), default=True, doc="write tensorboard scalars/images"),
    "keep_last": Key((int,), default=5, doc="keep only the last N training states and net_g_<iter>.pth (0 = all)"),
    "wandb": Key((dict,), children={
        "project": Key((str,), doc="wandb project; unset or null (BasicSR's files carry project: ~): no wandb"),
        "entity": Key((str,), doc="wandb user or team (default: your default entity)"),
        "resume_id": Key((str,), doc="the wandb run to continue (default: the experiment folder's run id, so a "
                         "resumed experiment continues its run)"),
        "mode": Key((str,), choices=("online", "offline", "disabled"), doc="wandb's mode (unset: wandb's default "
                    "and WANDB_MODE)"),
    }, doc="log the tensorboard scalars and images, and the option file, to Weights & Biases (rank 0; needs "
           "pip install -e \".[wandb]\"; docs/training_toolbox.md)"),
}

DIST = {
    "backend": Key((str,), default="auto", doc="auto: nccl on GPUs (with gloo for CPU tensors), gloo on the CPU; "
                   "or nccl, gloo, or a device map such as 'cpu:gloo,cuda:nccl'"),
    "port": Key((int,), default=29500, doc="master port for --launcher slurm"),
    "timeout": Key(_NUM, doc="seconds a collective may wait before the run fails (torch's default when unset)"),
}

TOP_LEVEL: dict[str, Key] = {
    "name": Key((str,), required=True, doc="experiment name (folder name)"),
    "model_type": Key((str,), default="SRModel", doc="registered trainer"),
    "model_opt": Key((dict,), default={}, doc="old name of the trainer's own train: options (accepted as an alias)"),
    "scale": Key((int,), default=1, doc="upscaling factor (1 for restoration)"),
    "num_gpu": Key((int, str), default="auto", doc="'auto' (every visible GPU, else the CPU) or a count "
                   "(under torchrun/srun the job's: each rank drives one); 0 = CPU"),
    "manual_seed": Key((int,), default=0, doc="seed of every random generator"),
    "is_train": Key((bool,), doc="set by train.py/test.py"),
    "dist": Key((bool,), doc="set by the launcher"),
    "opt_path": Key((str,), doc="set by the framework: the option file read"),
    "time": Key((str,), doc="set by the framework: start time"),
    "rank": Key((int,), doc="set by the launcher"),
    "world_size": Key((int,), doc="set by the launcher"),
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

