"""Train a network: ``python train.py -opt options/train/SwinIR/train_SwinIR_SRx2_DIV2K.yml``.

Several GPUs: ``torchrun --nproc_per_node=4 train.py -opt ... --launcher pytorch``.
After a crash or pre-emption: add ``--auto_resume``.
"""

from restoration.train_loop import main

if __name__ == "__main__":
    raise SystemExit(main())
