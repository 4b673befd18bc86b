"""Benchmark trained weights: ``python test.py -opt options/test/SwinIR/test_SwinIR_SRx2_DIV2K.yml`` (see restoration.cli.test)."""

from restoration.cli.test import main

if __name__ == "__main__":
    raise SystemExit(main())
