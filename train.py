"""Train a network: ``python train.py -opt options/train/SwinIR/train_SwinIR_SRx2_DIV2K.yml`` (see restoration.cli.train)."""

from restoration.cli.train import main

if __name__ == "__main__":
    raise SystemExit(main())
