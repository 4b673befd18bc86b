"""Synthetic degradations that make LQ training images from GT images.

* :mod:`~restoration.data.degradations.operations`: single steps (MATLAB bicubic, Gaussian noise, OpenCV JPEG);
* :mod:`~restoration.data.degradations.chain`: the ``degradation:`` option of a ``DegradationDataset``, a list of
  steps or the BSRGAN recipe;
* :mod:`~restoration.data.degradations.bsrgan`: the BSRGAN recipe (per image, numpy, in the data workers);
* :mod:`~restoration.data.degradations.kernels`: the Real-ESRGAN blur kernels drawn in the data workers;
* :mod:`~restoration.data.degradations.realesrgan`: the batched Real-ESRGAN degradation on the training device;
* :mod:`~restoration.data.degradations.diff_jpeg`: batched JPEG in torch, used by the Real-ESRGAN degradation.
"""
