"""Taking trained weights out of training: which network a checkpoint is, and the files another program runs.

* :mod:`restoration.deploy.network`: the network for a checkpoint (an option file, ``--arch``, the options saved
  beside a training run's weights, or detection from the checkpoint's keys), shared by ``restoration-infer`` and
  ``restoration-export``.
* :mod:`restoration.deploy.onnx_export` / :mod:`restoration.deploy.onnx_check`: an ONNX model that takes any image
  size, and its comparison with PyTorch in onnxruntime.
* :mod:`restoration.deploy.safetensors_export`: the weights as ``.safetensors``.

A package of its own, not part of :mod:`restoration.inference`: it reads option files (the YAML loader of
:mod:`restoration.options`), which the components below the options must not import.
"""
