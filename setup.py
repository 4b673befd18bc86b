"""Install with ``pip install -e .`` (add ``[natten]`` for the optional neighbourhood-attention kernels)."""

from setuptools import find_packages, setup

setup(
    name="restoration",
    version="0.1.0",
    description="Train and benchmark image-restoration networks (SwinIR, HAT, DSwinIR, TBSN) from YAML options",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["restoration", "restoration.*"]),
    python_requires=">=3.9",
    install_requires=[
        "torch>=2.5",
        "torchvision",
        "einops",
        "timm",
        "opencv-python-headless",
        "pyyaml",
        "lmdb",
        "tensorboard",
        "tqdm",
        "scikit-image",
        "scipy",
        "safetensors",
        "numpy",
    ],
    # python train.py / test.py as commands that run from any folder (docs/install.md: how paths resolve)
    entry_points={"console_scripts": ["restoration-infer=restoration.cli.infer:main",
                                      "restoration-train=restoration.cli.train:main",
                                      "restoration-test=restoration.cli.test:main",
                                      "restoration-export=restoration.cli.export:main",
                                      "restoration-zoo=restoration.cli.zoo:main"]},
    extras_require={
        "natten": ["natten>=0.20"],
        # the suite also compares LPIPS with the official package and runs the ONNX export (so CI runs both)
        "test": ["pytest", "h5py", "lpips", "onnx", "onnxscript", "onnxruntime", "pytorch-optimizer", "schedulefree",
                 "dists-pytorch", "pytorch-fid",  # test_dists/test_fid references: <100 kB each, deps already ours
                 "spandrel>=0.4,<0.5"],  # tests/test_spandrel_fallback.py; pure Python, deps already ours
        # restoration-infer with any checkpoint spandrel (MIT) recognises when none of our families claims it
        # (restoration/inference/spandrel_fallback.py); it needs only torch, torchvision, safetensors, numpy,
        # einops, typing_extensions, all ours already. Not spandrel_extra_arches: not all of it is MIT-compatible
        "zoo": ["spandrel>=0.4,<0.5"],
        # the optimizers beyond torch's: Adan, Lion, Prodigy, SOAP, ADOPT (pytorch-optimizer), AdamWScheduleFree
        "optim": ["pytorch-optimizer", "schedulefree"],
        # tests/test_lpips.py compares restoration's LPIPS with the official package (skipped without it)
        "lpips": ["lpips"],
        # python -m restoration.export (ONNX; the check runs the model in onnxruntime); tests/test_export.py
        "export": ["onnx", "onnxscript", "onnxruntime", "onnxslim"],
        # logger.wandb (Weights & Biases); optional because it brings a service binary, pydantic and an
        # OpenTelemetry stack, so it stays out of "test" too (tests/test_training_toolbox.py skips without it)
        "wandb": ["wandb"],
    },
    # the weights manifest read by restoration.zoo
    package_data={"restoration": ["archs/*/zoo.yaml"]},
)
