"""The lake: one filesystem abstraction over a local directory or an s3:// prefix.

Layout (relative to the lake root):

    landing/<source>/<batch_id>/<extract> + manifest.json   immutable deliveries
    truth/                                                  synthetic ground truth only
    clean/clean_person/<source>/<batch_id>.parquet          accepted, standardised rows
    quarantine/<source>/<batch_id>.parquet                  rejected rows with reasons
    rejected/<source>/<batch_id>/<file> + reason.json       deliveries turned away at ingest
    state/batches/<source>/<batch_id>.json                  ledger: batches already scrubbed
    curated/snapshots/<run_id>/<table>.parquet              one snapshot per run
    curated/CURRENT.json                                    pointer to the published snapshot

On AWS each zone may live in a bucket of its own (the CDK storage stack makes one per
zone), still under a folder named after the zone. Such a lake is named by one string,
the root's URI with the other zones' roots as query parameters:

    s3://curated-bucket?landing=s3://landing-bucket&clean=s3://clean-bucket

so the same ``--lake`` argument works for every job, process and command.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlparse

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from veracity.errors import LakeError


def _s3_filesystem() -> pafs.S3FileSystem:
    """An S3 filesystem honouring the standard AWS environment, AWS_ENDPOINT_URL included."""
    kwargs: dict = {
        "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "eu-west-2"
    }
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        parsed = urlparse(endpoint)
        kwargs["endpoint_override"] = parsed.netloc or parsed.path
        kwargs["scheme"] = parsed.scheme or "https"
    return pafs.S3FileSystem(**kwargs)


def _s3_root(fs: pafs.FileSystem, uri: str, bucket: str, prefix: str) -> str:
    """``bucket/prefix`` of an s3:// root, once its bucket is known to exist."""
    if not bucket:
        raise LakeError(f"lake {uri!r} names no bucket: use s3://bucket/prefix")
    try:
        info = fs.get_file_info(bucket)
    except OSError as exc:
        raise LakeError(f"cannot reach bucket {bucket!r} of lake {uri}: {exc}") from exc
    if info.type == pafs.FileType.NotFound:
        raise LakeError(f"bucket {bucket!r} of lake {uri} does not exist; create it first")
    return (bucket + "/" + prefix.strip("/")).rstrip("/")


ZONES = ("landing", "truth", "clean", "quarantine", "rejected", "state", "curated", "models", "staging")


@dataclass
class Lake:
    """A lake rooted at a local directory or at ``s3://bucket/prefix``; ``zones`` maps a
    zone to the root it lives under when that is not ``root``."""

    uri: str
    fs: pafs.FileSystem
    root: str
    zones: dict[str, str] = field(default_factory=dict)

    @classmethod
    def open(cls, uri: str, *, create: bool = False) -> Lake:
        if not uri:
            raise LakeError("no lake given: pass --lake DIR or --lake s3://bucket/prefix")
        if uri.startswith("s3://"):
            parsed = urlparse(uri)
            try:
                fields = parse_qsl(parsed.query, keep_blank_values=True, strict_parsing=bool(parsed.query))
            except ValueError as exc:
                raise LakeError(f"lake {uri!r}: zones are given as zone=s3://bucket[/prefix] ({exc})") from exc
            zone_uris = {}
            for zone, zone_uri in fields:
                zone_parsed = urlparse(zone_uri)
                if zone not in ZONES:
                    raise LakeError(f"lake {uri!r}: unknown zone {zone!r} (zones: {', '.join(ZONES)})")
                if zone_parsed.scheme != "s3" or zone_parsed.query:
                    raise LakeError(f"lake {uri!r}: zone {zone} must be at s3://bucket[/prefix], got {zone_uri!r}")
                zone_uris[zone] = zone_parsed
            fs = _s3_filesystem()
            root = _s3_root(fs, uri, parsed.netloc, parsed.path)
            zones = {zone: _s3_root(fs, uri, z.netloc, z.path) for zone, z in zone_uris.items()}
            return cls(uri, fs, root, zones)
        if "?" in uri:
            raise LakeError(f"lake {uri!r}: zones in buckets of their own are for s3:// lakes only")
        if "://" in uri:
            raise LakeError(f"lake {uri!r}: only local directories and s3:// URIs are supported")
        root = os.path.abspath(uri)
        if not os.path.isdir(root):
            if not create:
                raise LakeError(f"lake directory {uri!r} does not exist; run 'veracity generate' first or check the path")
            os.makedirs(root, exist_ok=True)
        return cls(uri, pafs.LocalFileSystem(), root)

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def path(self, *parts: str) -> str:
        zone = parts[0].split("/", 1)[0] if parts else None  # a part may be a whole relative path
        root = self.zones.get(zone, self.root)
        return posixpath.join(root, *parts)

    def display(self, *parts: str) -> str:
        """A path as the user would write it (s3://… or a local path)."""
        p = self.path(*parts)
        return f"s3://{p}" if not self.is_local else p

    # -- files ------------------------------------------------------------
    def exists(self, *parts: str) -> bool:
        return self.fs.get_file_info(self.path(*parts)).type != pafs.FileType.NotFound

    def size(self, *parts: str) -> int:
        return self.fs.get_file_info(self.path(*parts)).size or 0

    def total_size(self, *parts: str) -> int:
        """Bytes in the files under a folder, at any depth (0 when it does not exist)."""
        return sum(i.size or 0 for i in self._list(parts, recursive=True) if i.type == pafs.FileType.File)

    def copy(self, source: tuple[str, ...], target: tuple[str, ...]) -> None:
        """Copy one object within the lake (server-side on S3)."""
        self.fs.create_dir(posixpath.dirname(self.path(*target)), recursive=True)
        self.fs.copy_file(self.path(*source), self.path(*target))

    def list_dirs(self, *parts: str) -> list[str]:
        return sorted(i.base_name for i in self._list(parts) if i.type == pafs.FileType.Directory)

    def list_files(self, *parts: str) -> list[str]:
        return sorted(i.base_name for i in self._list(parts) if i.type == pafs.FileType.File)

    def _list(self, parts: tuple[str, ...], recursive: bool = False) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(self.path(*parts), allow_not_found=True, recursive=recursive)
        return self.fs.get_file_info(selector)

    def read_bytes(self, *parts: str) -> bytes:
        with self.fs.open_input_stream(self.path(*parts)) as f:
            return f.read()

    def write_bytes(self, data: bytes, *parts: str) -> None:
        """Write a whole object. Locally it is written aside and renamed, so readers
        never see half a file; an S3 PUT is atomic already."""
        target = self.path(*parts)
        self.fs.create_dir(posixpath.dirname(target), recursive=True)
        if self.is_local:
            tmp = target + ".tmp"
            with self.fs.open_output_stream(tmp) as f:
                f.write(data)
            self.fs.move(tmp, target)
        else:
            with self.fs.open_output_stream(target) as f:
                f.write(data)

    def open_output(self, *parts: str):
        """A stream for writing one large object; the object appears when it is closed."""
        target = self.path(*parts)
        self.fs.create_dir(posixpath.dirname(target), recursive=True)
        return self.fs.open_output_stream(target)

    def put_file(self, local_path: str, *parts: str) -> None:
        """Copy a local file into the lake, streaming (for outputs too big to hold in memory)."""
        with open(local_path, "rb") as source, self.open_output(*parts) as target:
            while chunk := source.read(8 << 20):
                target.write(chunk)

    def read_json(self, *parts: str):
        return json.loads(self.read_bytes(*parts))

    def write_json(self, obj, *parts: str) -> None:
        self.write_bytes(json.dumps(obj, indent=2, sort_keys=True, default=str).encode(), *parts)

    def delete_dir(self, *parts: str) -> None:
        if self.exists(*parts):
            self.fs.delete_dir(self.path(*parts))

    def delete_file(self, *parts: str) -> None:
        if self.exists(*parts):
            self.fs.delete_file(self.path(*parts))

    # -- tables -----------------------------------------------------------
    def write_table(self, table: pa.Table, *parts: str) -> None:
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        self.write_bytes(buf.getvalue(), *parts)

    def read_table(self, *parts: str, schema: pa.Schema | None = None) -> pa.Table:
        return self.dataset(*parts, schema=schema).to_table()

    def dataset(self, *parts: str, schema: pa.Schema | None = None) -> ds.Dataset:
        """A parquet file, or every parquet file under a directory, as one dataset."""
        path = self.path(*parts)
        info = self.fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            if schema is not None:
                return ds.dataset(schema.empty_table())
            raise LakeError(f"{self.display(*parts)} does not exist")
        if info.type == pafs.FileType.Directory:
            files = [
                i.path
                for i in self.fs.get_file_info(pafs.FileSelector(path, recursive=True))
                if i.type == pafs.FileType.File and i.path.endswith(".parquet")
            ]
            if not files:
                return ds.dataset((schema or pa.schema([])).empty_table())
            return ds.dataset(sorted(files), filesystem=self.fs, format="parquet", schema=schema)
        return ds.dataset(path, filesystem=self.fs, format="parquet", schema=schema)
