"""Benchmark trained weights: ``python test.py -opt options/test/SwinIR/test_SwinIR_SRx2_DIV2K.yml``.

Writes per-image and average metrics to the log and to ``results/<name>/metrics.json``.
"""

from restoration.tester import main

if __name__ == "__main__":
    raise SystemExit(main())
