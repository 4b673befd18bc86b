"""``python -m restoration.zoo``: the ``restoration-zoo`` command without installing it (:mod:`restoration.cli.zoo`)."""

from restoration.cli.zoo import main

if __name__ == "__main__":
    raise SystemExit(main())
