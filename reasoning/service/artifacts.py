"""The artifact store: file-sized things (dataset Parquet, pickled models) under one URI,
a local folder or `s3://bucket/prefix`.

One pyarrow filesystem serves all of them, so the same code runs on a laptop and on a
cluster whose hosts share no disk. An S3-compatible server's endpoint and credentials
come from the standard AWS variables, read the way boto3 and the AWS CLI read them
(`AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`; `AWS_REGION`, else
`AWS_DEFAULT_REGION`; the keys by the SDK's own chain); `forwarded_env` lists the ones
every Ray worker must be given.

Nothing here is ever visible on its own: a stored object is reached only through its
catalog row in the metadata store, written after the object, so a crash between the
two leaves an unreferenced object and no half dataset or model.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
from pyarrow import fs

AWS_VARIABLES = (
    "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE",
)


class ArtifactStore:
    """Objects under a base path of one pyarrow filesystem, addressed by relative keys."""

    def __init__(self, uri: str, environ: Mapping[str, str] | None = None) -> None:
        self.uri = uri
        scheme = urlsplit(uri).scheme
        if scheme == "s3":
            self.filesystem: fs.FileSystem = fs.S3FileSystem(**s3_options(environ or os.environ))
            self.base = uri.removeprefix("s3://").strip("/")
            if not self.base:
                raise ValueError(f"artifact store {uri!r} names no bucket: use s3://bucket/prefix")
        elif scheme in ("", "file"):
            self.filesystem = fs.LocalFileSystem()
            self.base = str(Path(uri.removeprefix("file://")).expanduser().resolve())
        else:
            raise ValueError(
                f"artifact store {uri!r}: use a local folder or s3://bucket/prefix"
            )

    @property
    def local(self) -> bool:
        return isinstance(self.filesystem, fs.LocalFileSystem)

    def path(self, key: str) -> str:
        """The object's path on `filesystem` (what pyarrow takes)."""
        return f"{self.base}/{key}"

    def put(self, key: str, data: bytes) -> None:
        """Write one object whole or not at all (the one way the dataset store and the model
        registry write). On S3 an object appears only once its upload completes; locally
        the bytes go to a temporary name, are fsynced, and are renamed into place, and the
        folder is fsynced so that the rename outlasts a power cut."""
        path = self.path(key)
        if not self.local:
            with self.filesystem.open_output_stream(path) as out:
                out.write(data)
            return
        # By hand: pyarrow's LocalFileSystem writes in place and never fsyncs, and the
        # standard library has no atomic write.
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
        try:
            with open(tmp, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        # The rename itself is durable only once its folder is synced; the catalog row that
        # makes the object visible commits next, and must never outlive a lost file.
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    def get(self, key: str) -> bytes:
        """The object's bytes; KeyError if there is none."""
        try:
            with self.filesystem.open_input_file(self.path(key)) as source:
                return source.read()
        except (FileNotFoundError, OSError) as err:
            if self.exists(key):
                raise
            raise KeyError(key) from err

    def exists(self, key: str) -> bool:
        return self.filesystem.get_file_info(self.path(key)).type == fs.FileType.File

    def reader(self, key: str) -> pa.NativeFile:
        """A random-access file, so Parquet reads fetch only the columns they need."""
        try:
            return self.filesystem.open_input_file(self.path(key))
        except FileNotFoundError as err:
            raise KeyError(key) from err


def s3_options(environ: Mapping[str, str]) -> dict[str, object]:
    """S3FileSystem's arguments from the AWS variables (the SDK reads the keys itself)."""
    options: dict[str, object] = {}
    endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme and parts.netloc:
            options.update(endpoint_override=parts.netloc + parts.path.rstrip("/"),
                           scheme=parts.scheme)
        else:
            options["endpoint_override"] = endpoint
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if region:
        options["region"] = region
    return options


def forwarded_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The AWS variables set here, for every process that may touch artifacts."""
    environ = os.environ if environ is None else environ
    return {name: environ[name] for name in AWS_VARIABLES if name in environ}
