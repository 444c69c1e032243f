"""The `reasoning` command. Running the service: `reasoning serve` runs it, `reasoning
demo` shows it, `reasoning admin` manages tenants' API keys (auth mode `token`), and
`reasoning db upgrade` migrates the metadata store. Using a running service (over REST):
`datasets`, `fit`, `jobs`, `cancel`, `models`, `predict`, `report` (serve_app/commands.py)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import TYPE_CHECKING

from serve_app import commands
from serve_app.commands import add_commands

# The service's own modules (stores, settings, Ray) are imported by the commands that run
# it, not here: a command that talks to a running service then starts in about a second
# instead of four (scikit-learn, FastAPI and SQLAlchemy are not needed for a REST call).
if TYPE_CHECKING:
    from serve_app.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    from serve_app.settings import Settings

    given = {k: v for k, v in vars(args).items() if k in Settings.model_fields and v is not None}
    return Settings(**given)


def _stores(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", help="folder of the default stores (default ./.reasoning)")
    parser.add_argument("--store", help="metadata store, a SQLAlchemy URL, e.g."
                        " postgresql+psycopg://user:pw@host/db (default: SQLite in the home)")
    parser.add_argument("--artifacts", help="artifact store, a folder or s3://bucket/prefix"
                        " (default: <home>/artifacts)")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8000)")
    parser.add_argument("--replicas", type=int, help="ingress replicas (default 1)")
    _stores(parser)
    parser.add_argument(
        "--address", help="Ray cluster to join, e.g. 'auto'; default: start a local Ray"
    )
    parser.add_argument("--auth-mode", dest="auth_mode", choices=["none", "token"],
                        help="none (default: one implicit tenant) or token (API keys)")
    parser.add_argument("--allow-open-bind", dest="allow_open_bind", action="store_true",
                        default=None,
                        help="listen on a non-loopback host even with auth mode none")
    parser.add_argument("--verbose", action="store_true",
                        help="Ray's and Serve's logs on the console too (default: in files)")


def serve_command(settings: Settings, verbose: bool = False) -> int:
    """Run the service in the foreground until Ctrl-C or SIGTERM."""
    from serve_app import runtime

    try:
        runtime.check_bind(settings)
    except runtime.UnsafeBind as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"starting Ray and the service on http://{settings.host}:{settings.port} ...",
          flush=True)
    info = runtime.start(settings, verbose)
    stores = settings.stores()
    where = (f"home {stores.home}" if stores.uses_home
             else f"metadata {_redacted(stores.database)}, artifacts {stores.artifacts}")
    print(f"reasoning service on {info['url']} ({where}); Ctrl-C stops it\n"
          f"  API docs: {info['url']}/docs\n"
          f"  logs:     {info['ray_logs']}", flush=True)
    try:
        stop.wait()
    finally:
        print("stopping Serve and Ray ...", flush=True)
        runtime.stop(settings)
    return 0


def db_command(settings: Settings) -> int:
    """Apply the metadata store's pending migrations (the service also does at start)."""
    stores = settings.stores()
    revision = stores.upgrade()
    print(f"metadata store at revision {revision}")
    return 0


def admin_command(args: argparse.Namespace, settings: Settings) -> int:
    """Keys live in the metadata store; the running service sees new ones at once."""
    from serve_app.auth import credential_store

    settings.stores().upgrade()  # keys may be made before the service ever ran
    store = credential_store(settings)
    if args.admin == "create-key":
        try:
            key_id, key = store.create_key(args.tenant)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"tenant: {args.tenant}\nkey id: {key_id}\napi key: {key}")
        print("The key is shown only this once; the service keeps a hash of it.",
              file=sys.stderr)
        return 0
    if args.admin == "revoke-key":
        if store.revoke_key(args.key_id):
            print(f"revoked key {args.key_id} and its refresh tokens")
            return 0
        print(f"error: no active key {args.key_id}", file=sys.stderr)
        return 1
    if args.admin == "show-job":
        return show_job(settings, args.job_id)
    for row in store.list_keys():
        state = "revoked" if row["revoked_at"] else "active"
        print(f"{row['key_id']}  {row['tenant']}  {state}")
    return 0


def show_job(settings: Settings, job_id: str) -> int:
    jobs = settings.stores().jobs()
    try:
        job, detail = jobs.get(job_id), jobs.error_detail(job_id)
    except KeyError:
        print(f"error: no job {job_id}", file=sys.stderr)
        return 1
    print(f"job {job.job_id} of tenant {job.tenant}: {job.status}, stage {job.stage},"
          f" {job.attempts} attempt(s)\n{job.message}")
    if detail:
        print(f"\n{detail}")
    return 0


def _redacted(url: str) -> str:
    """A database URL fit to print: its password masked."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reasoning", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _common(sub.add_parser("serve", help="run the service in the foreground"))
    demo = sub.add_parser("demo", help="start the service, fit a model through REST, stop")
    _common(demo)
    admin = sub.add_parser("admin", help="manage tenants' API keys (auth mode token)")
    _stores(admin)
    keys = admin.add_subparsers(dest="admin", required=True)
    create = keys.add_parser("create-key", help="make an API key for a tenant; shown once")
    create.add_argument("--tenant", required=True, help="tenant name, e.g. team-a")
    keys.add_parser("revoke-key", help="revoke a key by its id").add_argument("key_id")
    keys.add_parser("list-keys", help="key ids, tenants and states (never the keys)")
    keys.add_parser("show-job", help="a job as stored, with the whole error of a failed one"
                    " (tracebacks are never in the API's answers)").add_argument("job_id")
    db = sub.add_parser("db", help="the metadata store")
    _stores(db.add_subparsers(dest="db", required=True).add_parser(
        "upgrade", help="apply pending migrations (imports a home from before the store)"
    ))
    add_commands(sub)
    args = parser.parse_args(argv)
    if hasattr(args, "run"):  # a command that talks to a running service
        return commands.run(args)
    from reasoning.service.stores import keep_private

    keep_private()  # the service's commands make the home's files: its user's alone
    try:
        settings = _settings(args)
        settings.stores()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.command == "db":
        return db_command(settings)
    if args.command == "serve":
        return serve_command(settings, args.verbose)
    if args.command == "admin":
        return admin_command(args, settings)
    from serve_app.demo import run_demo

    return run_demo(settings, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
