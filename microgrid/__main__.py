"""``python -m microgrid``: the same as the ``microgrid`` command."""

from microgrid.cli import main

main()
