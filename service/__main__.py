"""``python -m service``: the ``interp`` command line (``serve`` by default)."""

import sys

from service.cli import main

main(sys.argv[1:] or ["serve"])
