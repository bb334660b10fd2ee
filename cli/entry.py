"""The ``shoal`` command's entry point: ``shoal version --client`` is answered here, before
the command-line library and its help machinery load (they are most of a short command's
time: about 0.2 s of 0.27 s); everything else goes to ``cli/app.py``."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["version", "--client"]:
        import shoal

        print(f"Client Version: {shoal.__version__}")
        return
    from shoal.cli.app import main as run

    run()
