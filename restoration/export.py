"""``python -m restoration.export``: the ``restoration-export`` command without installing it
(:mod:`restoration.cli.export`)."""

from restoration.cli.export import main

if __name__ == "__main__":
    raise SystemExit(main())
