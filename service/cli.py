"""`interp` console script (placeholder until the service lands)."""


def main() -> None:
    raise SystemExit("interp: the HTTP service is not built yet")
