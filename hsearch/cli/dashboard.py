"""``hsearch dashboard``: optuna-dashboard on the study's storage."""

from __future__ import annotations

import sys

from hsearch.cli.common import add_study_flags


def add(sub) -> None:
    p = sub.add_parser("dashboard", help="serve optuna-dashboard on the study storage (Ctrl-C stops it)")
    add_study_flags(p)
    p.add_argument("--port", type=int, default=8080, help="TCP port (default 8080; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1, this machine only; for a remote machine use an "
                        "SSH tunnel rather than another address)")
    p.add_argument("--artifact-dir", default=None,
                   help="Optuna artifact store folder (default: the store hsearch run recorded on the study)")
    p.add_argument("--no-notes", dest="notes", action="store_false",
                   help="do not write trial notes at start (by default every finished trial without an "
                        "up-to-date hsearch note gets one: layout strip, scores, latency, rungs, why it "
                        "stopped; notes edited in the dashboard are left alone)")
    p.set_defaults(func=handle)


def handle(args) -> int:
    import signal

    from hsearch.analysis.dashboard import is_loopback, start

    if not is_loopback(args.host):
        print(f"hsearch dashboard: warning: --host {args.host} serves the study to the network with no "
              "authentication: anyone who reaches this port can read and change it. Prefer the default "
              "127.0.0.1 and an SSH tunnel (ssh -L 8080:127.0.0.1:8080 HOST).", file=sys.stderr, flush=True)
    board = start(args.storage, host=args.host, port=args.port, study_name=args.study, artifact_dir=args.artifact_dir,
                  notes=args.notes)
    if board.notes_written:
        print(f"hsearch dashboard: wrote the notes of {board.notes_written} trial(s)", file=sys.stderr, flush=True)

    def stop(signum, frame):  # SIGTERM too, and SIGINT even where a shell started us ignoring it
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    print(f"optuna-dashboard on {board.url}  (Ctrl-C stops it)", flush=True)
    try:
        board.serve_forever()
    except KeyboardInterrupt:
        print("dashboard stopped", file=sys.stderr)
    return 0
