"""``python -m restoration.infer``: the ``restoration-infer`` command without installing it
(:mod:`restoration.cli.infer`)."""

from restoration.cli.infer import main

if __name__ == "__main__":
    raise SystemExit(main())
