"""The `reasoning` command: `reasoning serve` runs the service, `reasoning demo` shows it."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from serve_app.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    given = {k: v for k, v in vars(args).items() if k in Settings.model_fields and v is not None}
    return Settings(**given)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8000)")
    parser.add_argument("--home", help="folder holding all state (default ./.reasoning)")
    parser.add_argument(
        "--address", help="Ray cluster to join, e.g. 'auto'; default: start a local Ray"
    )


def serve_command(settings: Settings) -> int:
    """Run the service in the foreground until Ctrl-C or SIGTERM."""
    from serve_app import runtime

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    info = runtime.start(settings)
    print(f"reasoning service on {info['url']} (home {settings.home}); Ctrl-C stops it",
          flush=True)
    try:
        stop.wait()
    finally:
        print("stopping Serve and Ray ...", flush=True)
        runtime.stop(settings)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reasoning", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _common(sub.add_parser("serve", help="run the service in the foreground"))
    demo = sub.add_parser("demo", help="start the service, fit a model through REST, stop")
    _common(demo)
    args = parser.parse_args(argv)
    settings = _settings(args)
    if args.command == "serve":
        return serve_command(settings)
    from serve_app.demo import run_demo

    return run_demo(settings)


if __name__ == "__main__":
    sys.exit(main())
