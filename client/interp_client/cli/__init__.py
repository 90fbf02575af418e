"""interp-client: submit jobs of every kind to interp-service and read them, from a shell.

    interp-client run patching --model gemma-3-270m --clean "…" --corrupted "…" --answer " Mary" --wrong-answer " John"
    interp-client jobs ls | jobs show ID | jobs cancel ID
    interp-client models

``run KIND`` has one option per field of the kind's spec in openapi.yaml (``run KIND --help`` lists them). While a
job runs, a progress bar on stderr follows its events (on a terminal); the result prints as tables, or as the
job's JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, cast

from interp_client.cli.options import add_spec_options
from interp_client.cli.progress import follow
from interp_client.cli.tables import job_table, model_table, render_job
from interp_client.client import Client
from interp_client.errors import ConnectionFailedError, InterpError, ServerError, WaitTimeoutError
from interp_client.jobs import Job
from interp_client.kinds import KINDS, JobSpec, build_spec
from interp_client.transport import DEFAULT_URL

__all__ = ["EXIT_BAD_REQUEST", "EXIT_FAILED", "EXIT_OK", "EXIT_TIMEOUT", "EXIT_TROUBLE", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_REQUEST = 2
EXIT_TROUBLE = 3
EXIT_TIMEOUT = 4
EXIT_INTERRUPTED = 130

EPILOG = f"""exit status:
  {EXIT_OK}    success (the job succeeded, or the command did what it says)
  {EXIT_FAILED}    the job failed or was cancelled (its error code and message are printed)
  {EXIT_BAD_REQUEST}    a bad request: a wrong option or value, an unknown model, SAE or job id (4xx)
  {EXIT_TROUBLE}    connection or server trouble: unreachable, 5xx, 503 after retries
  {EXIT_TIMEOUT}    --timeout passed with the job still running (it goes on on the server)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); the job goes on on the server

environment: INTERP_URL (default {DEFAULT_URL}), INTERP_API_KEY"""


def _connection_options(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    """``--url``, ``--api-key``, ``--json`` before the command or after it (defaults are set at the top only)."""
    default: Callable[[Any], Any] = (lambda value: value) if top_level else (lambda _: argparse.SUPPRESS)
    parser.add_argument("--url", default=default(os.environ.get("INTERP_URL", DEFAULT_URL)),
                        help="the service (env INTERP_URL; default %(default)s)" if top_level else argparse.SUPPRESS)
    parser.add_argument("--api-key", default=default(os.environ.get("INTERP_API_KEY")),
                        help="sent as a bearer token (env INTERP_API_KEY)" if top_level else argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", default=default(False),
                        help="print JSON (the job, list or model) instead of tables")


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="interp-client", description=__doc__.split("\n\n")[0], epilog=EPILOG,
                                     formatter_class=formatter)
    _connection_options(parser, top_level=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{run,jobs,models}")

    run = commands.add_parser("run", help="submit a job, follow it, print its result", epilog=EPILOG,
                              formatter_class=formatter)
    kinds = run.add_subparsers(dest="kind", required=True, metavar="{" + ",".join(KINDS) + "}")
    for kind, kind_models in KINDS.items():
        summary = (getattr(Client, kind).__doc__ or kind).strip().splitlines()[0]
        aliases = [kind.replace("_", "-")] if "_" in kind else []
        sub = kinds.add_parser(kind, aliases=aliases, help=summary, description=summary, epilog=EPILOG,
                               formatter_class=formatter)
        _connection_options(sub, top_level=False)
        sub.add_argument("--timeout", type=float, help="stop waiting after this many seconds (exit 4)")
        sub.add_argument("--no-wait", action="store_true", help="print the job id (or JSON) once accepted")
        sub.add_argument("--top", type=int, default=10, help="rows shown per table (default %(default)s)")
        sub.set_defaults(read_spec=add_spec_options(sub, kind_models.spec), handler=_run)

    jobs = commands.add_parser("jobs", help="your jobs: ls, show ID, cancel ID", epilog=EPILOG,
                               formatter_class=formatter)
    actions = jobs.add_subparsers(dest="action", required=True, metavar="{ls,show,cancel}")
    ls = actions.add_parser("ls", help="newest first")
    _connection_options(ls, top_level=False)
    ls.add_argument("--limit", type=int, default=20, help="how many (default %(default)s)")
    ls.set_defaults(handler=_jobs_ls)
    for action, handler, text in (("show", _jobs_show, "a job's status and result"),
                                  ("cancel", _jobs_cancel, "cancel a queued or running job")):
        sub = actions.add_parser(action, help=text)
        _connection_options(sub, top_level=False)
        sub.add_argument("job_id", metavar="ID")
        sub.add_argument("--top", type=int, default=10, help="rows shown per table (default %(default)s)")
        sub.set_defaults(handler=handler)

    models = commands.add_parser("models", help="served models: layers, widths, SAEs")
    _connection_options(models, top_level=False)
    models.add_argument("model_id", nargs="?", metavar="ID", help="one model in full (JSON)")
    models.set_defaults(handler=_models)
    return parser


def _print_job(job: Job[Any], args: argparse.Namespace) -> int:
    print(job.record.model_dump_json(indent=2) if args.json else render_job(job.record, args.top))
    if job.status in ("failed", "cancelled"):
        return EXIT_FAILED
    return EXIT_OK if job.done else EXIT_TIMEOUT


def _run(client: Client, args: argparse.Namespace) -> int:
    kind_models = KINDS[args.kind.replace("-", "_")]
    job: Job[Any] = client.submit(cast("JobSpec", build_spec(kind_models.spec, args.read_spec(args))))
    if args.no_wait:
        print(job.record.model_dump_json(indent=2) if args.json else job.id)
        return EXIT_OK
    try:
        if sys.stderr.isatty():
            follow(client, job, sys.stderr, args.timeout)
        else:
            job.wait(args.timeout)
    except KeyboardInterrupt:
        print(f"\ninterrupted; the job goes on: interp-client jobs show {job.id}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not job.done:
        print(f"job {job.id} is still {job.status} after {args.timeout:g}s", file=sys.stderr)
    return _print_job(job, args)


def _jobs_ls(client: Client, args: argparse.Namespace) -> int:
    records = [job.record for job in client.jobs(limit=args.limit, page_size=min(max(args.limit, 1), 100))]
    if args.json:
        print("[" + ",\n".join(r.model_dump_json() for r in records) + "]")
    else:
        print(job_table(records))
    return EXIT_OK


def _jobs_show(client: Client, args: argparse.Namespace) -> int:
    return _print_job(client.job(args.job_id), args)


def _jobs_cancel(client: Client, args: argparse.Namespace) -> int:
    job = client.job(args.job_id).cancel()
    print(job.record.model_dump_json(indent=2) if args.json else f"job {job.id}: {job.status}")
    return EXIT_OK


def _models(client: Client, args: argparse.Namespace) -> int:
    if args.model_id:
        print(client.model(args.model_id).model_dump_json(indent=2))
    elif args.json:
        print("[" + ",\n".join(m.model_dump_json() for m in client.models()) + "]")
    else:
        print(model_table(client.models()))
    return EXIT_OK


def _exit_code(error: InterpError) -> int:
    if isinstance(error, WaitTimeoutError):
        return EXIT_TIMEOUT
    if isinstance(error, ConnectionFailedError | ServerError) or (error.status or 0) >= 500:
        return EXIT_TROUBLE
    return EXIT_BAD_REQUEST


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with Client(args.url, args.api_key) as client:
            code: int = args.handler(client, args)
            return code
    except InterpError as error:
        print(f"interp-client: {error}", file=sys.stderr)
        return _exit_code(error)
