"""``python -m interp_client``: the ``interp-client`` command."""

from interp_client.cli import main

raise SystemExit(main())
