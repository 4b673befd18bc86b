"""Optimizers and learning-rate schedules an option file may name (``optim_g``, ``scheduler``).

:mod:`restoration.optim.optimizers` holds the optimizer table, :mod:`restoration.optim.schedulers` the step
schedules and :mod:`restoration.optim.plateau` the validation-driven ``ReduceLROnPlateau``. Trainers build them;
the option validator checks them. Nothing here imports a trainer or :mod:`restoration.options`.
"""
