"""Trial artifacts through Optuna's artifact store, so every node, ``export`` and the dashboard reach them.

A search's last task for a trial (its only one, or its top rung) uploads the trial's
``result.json``, its tokenizer and, when the recipe keeps it, its checkpoint (each folder as one
``.tar.gz``) with ``optuna.artifacts.upload_artifact``, linked to the Optuna trial; optuna-dashboard
lists them on the trial page. ``export`` downloads a checkpoint from there when the trial's own
folder is not on this machine (it ran on another node).

The store is named by a URL, kept on the study (``artifact_store`` attr): ``file:///abs/path`` (the
default: ``ARTIFACTS/artifact-store``; on a cluster a folder every node sees), ``s3://bucket``
(Boto3, credentials from the environment) or ``gs://bucket`` (Google Cloud Storage).
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from pathlib import Path
from hsearch.errors import HsearchError

FOLDERS = ("tokenizer", "checkpoint")  # uploaded as <name>.tar.gz when present


def store_url(artifacts: str | os.PathLike, given: str | None = None) -> str:
    """``--artifact-store``, else a file-system store inside the ``--artifacts`` folder."""
    if given:
        return given
    return "file://" + str(Path(artifacts).resolve() / "artifact-store")


def open_store(url: str, create: bool = True):
    """The Optuna artifact store a URL names; a one-line error for what cannot be opened.
    ``create=False`` only checks the URL (and a file store's folder can be made), writing nothing."""
    from optuna.artifacts import Boto3ArtifactStore, FileSystemArtifactStore, GCSArtifactStore

    scheme, sep, rest = url.partition("://")
    if not sep or not rest:
        raise HsearchError(f"--artifact-store {url!r}: expected file:///path, s3://bucket or gs://bucket")
    if scheme == "file":
        path = Path(rest)
        if not path.is_absolute():
            raise HsearchError(f"--artifact-store {url!r}: a file store needs an absolute path (file:///abs/path)")
        if not create:
            from hsearch.paths import check_output_dir

            check_output_dir(path, "--artifact-store")
            return None
        path.mkdir(parents=True, exist_ok=True)
        return FileSystemArtifactStore(path)
    if scheme in ("s3", "gs"):
        bucket = rest.strip("/")
        if "/" in bucket:
            raise HsearchError(f"--artifact-store {url!r}: name a bucket only ({scheme}://bucket)")
        try:
            return None if not create else Boto3ArtifactStore(bucket) if scheme == "s3" else GCSArtifactStore(bucket)
        except ImportError as exc:
            raise HsearchError(f"--artifact-store {url!r}: {exc.name or exc} is not installed "
                               f"(pip install {'boto3' if scheme == 's3' else 'google-cloud-storage'})") from None
    raise HsearchError(f"--artifact-store {url!r}: unknown scheme {scheme!r} (allowed: file, s3, gs)")


def _tar(folder: Path, into: Path) -> Path:
    target = into / f"{folder.name}.tar.gz"
    with tarfile.open(target, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return target


def upload_trial(store: str, storage: str, study_name: str, number: int, out_dir: str | os.PathLike) -> list[str]:
    """Upload ``out_dir``'s result, tokenizer and checkpoint, linked to trial ``number`` (which must
    still be running: Optuna links artifacts through the trial's attributes). Returns the names."""
    from optuna.artifacts import upload_artifact

    from hsearch.search.study import make_storage

    out = Path(out_dir)
    rdb = make_storage(storage)
    study_id = rdb.get_study_id_from_name(study_name)
    frozen = rdb.get_trial(rdb.get_trial_id_from_study_id_trial_number(study_id, number))
    artifact_store = open_store(store)
    names = []
    with tempfile.TemporaryDirectory(prefix="hsearch-upload-") as tmp:
        files = [out / "result.json"] + [_tar(out / f, Path(tmp)) for f in FOLDERS if (out / f).is_dir()]
        for path in files:
            if path.is_file():
                upload_artifact(artifact_store=artifact_store, file_path=str(path), study_or_trial=frozen, storage=rdb)
                names.append(path.name)
    return names


def fetch_folder(study, number: int, name: str, dest: Path) -> Path | None:
    """Download trial ``number``'s ``<name>.tar.gz`` from the study's artifact store and unpack it
    under ``dest``; None when the study has no store or the trial no such artifact."""
    from optuna.artifacts import download_artifact, get_all_artifact_meta

    url = study.user_attrs.get("artifact_store")
    if not url:
        return None
    frozen = study._storage.get_trial(study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number))
    metas = [m for m in get_all_artifact_meta(frozen, storage=study._storage) if m.filename == f"{name}.tar.gz"]
    if not metas:
        return None
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / f"{name}-{number}.tar.gz"
    download_artifact(artifact_store=open_store(url), file_path=str(archive), artifact_id=metas[-1].artifact_id)
    with tarfile.open(archive) as tar:
        tar.extractall(dest / f"trial-{number}", filter="data")
    archive.unlink()
    return dest / f"trial-{number}" / name

