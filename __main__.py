"""``python -m shoal``: the same command line as the ``shoal`` script."""

from shoal.cli.entry import main

main()
