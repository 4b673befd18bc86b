"""The commands, as thin adapters: each parses its arguments, hands over to the library and turns the user's
problems into one line and an exit code.

``train`` (``train.py``, ``restoration-train``), ``test`` (``test.py``, ``restoration-test``), ``infer``
(``restoration-infer``, ``python -m restoration.infer``), ``export`` (``restoration-export``,
``python -m restoration.export``), ``zoo`` (``restoration-zoo``, ``python -m restoration.zoo``).
"""
