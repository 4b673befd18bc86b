"""The commands, as thin adapters: each parses its arguments, reads the options and hands over to the package.

``train`` (``train.py``, ``restoration-train``), ``test`` (``test.py``, ``restoration-test``).
"""
