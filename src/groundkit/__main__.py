"""``python -m groundkit``: the command line (same as the ``groundkit`` script)."""

from groundkit.cli import main

if __name__ == "__main__":
    main()
