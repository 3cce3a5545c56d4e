"""`hsearch dashboard`: optuna-dashboard on the study storage, bound to localhost by default.

The server is built from optuna-dashboard's WSGI app and a threaded wsgiref server, so the
socket is bound (and a port clash reported) before the URL is printed. Once bound, the finished
trials get their hsearch notes (:mod:`hsearch.search.note`; ``notes=False`` skips that), so a
study from before notes existed shows them too. A ``journal://`` storage is handed to
optuna-dashboard as a storage object (it reads the file with hsearch's journal class, which
also shows the attrs added to finished trials).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from hsearch.analysis.study import load_study
from hsearch.search.study import JOURNAL, existing_storage_url, make_storage
from hsearch.errors import HsearchError


class _ThreadedServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - one line per request would flood the terminal
        pass


@dataclass
class Dashboard:
    server: WSGIServer
    url: str
    notes_written: int = 0

    def serve_forever(self) -> None:
        try:
            self.server.serve_forever()
        finally:
            self.server.server_close()

    def shutdown(self) -> None:
        self.server.shutdown()


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) binds this machine only."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False  # not resolvable: binding will fail with its own message
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%", 1)[0]).is_loopback for info in infos)


def _study_store(url: str, study_name: str | None):
    """The artifact store ``hsearch run`` recorded on the study (``artifact_store`` attr), so the
    trial pages list each trial's files; None when there is no single study to ask or no store."""
    from hsearch.search.artifacts import open_store
    from hsearch.search.study import StudyError, load_existing_study

    try:
        recorded = load_existing_study(url, study_name).user_attrs.get("artifact_store")
    except StudyError:
        return None
    return open_store(recorded) if recorded else None


def start(storage: str | None, *, host: str = "127.0.0.1", port: int = 8080, study_name: str | None = None,
          artifact_dir: str | None = None, notes: bool = True) -> Dashboard:
    """Bind the dashboard; the returned object serves when ``serve_forever`` is called.

    ``notes``: write the hsearch note of every finished trial that lacks an up-to-date one, in
    the study named or in every study of the storage (notes edited in the dashboard are kept)."""
    from optuna_dashboard import wsgi

    url = existing_storage_url(storage)
    path = "/dashboard/"
    if study_name is not None:  # also checks the study exists and names the alternatives
        study = load_study(url, study_name)
        path = f"/dashboard/studies/{study._study_id}"
    store = None
    if artifact_dir is not None:
        from optuna.artifacts import FileSystemArtifactStore

        store = FileSystemArtifactStore(artifact_dir)
    else:
        store = _study_store(url, study_name)
    if not 0 <= port <= 65535:
        raise HsearchError(f"--port {port}: not a TCP port (allowed: 0..65535)")
    app = wsgi(make_storage(url) if url.startswith(JOURNAL) else url, artifact_store=store)
    try:
        server = make_server(host, port, app, server_class=_ThreadedServer, handler_class=_QuietHandler)
    except OSError as exc:
        why = "already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise HsearchError(f"--host {host} --port {port}: cannot listen ({why})") from exc
    bound = server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    written = _write_notes(url, study_name) if notes else 0
    return Dashboard(server, f"http://{shown}:{bound}{path}", written)


def _write_notes(url: str, study_name: str | None) -> int:
    """Notes on the finished trials of ``study_name`` (or of every study); never raises."""
    import logging

    import optuna

    from hsearch.search.note import write_notes

    try:
        store = make_storage(url)
        names = [study_name] if study_name is not None else optuna.get_all_study_names(store)
        return sum(write_notes(optuna.load_study(study_name=n, storage=store)) for n in names)
    except Exception as exc:  # noqa: BLE001 - the dashboard still serves without notes
        logging.getLogger(__name__).warning("hsearch dashboard: trial notes not written: %s: %s",
                                            type(exc).__name__, exc)
        return 0
