"""Where datasets are written (contract 7.2): an S3 bucket in AWS, a folder locally (`LAKE_DIR`).

Keys are relative to the lake's root: `sessions/batch_id=<id>/part-00000.jsonl.gz` and `manifest.json`
for consumers, `exports/batch_id=<id>/...` for the export's own work files (kept out of `sessions/`, which
Athena reads whole).

S3 calls: PutObject, GetObject, HeadObject on the lake bucket (and multipart upload for large parts); for an
erasure only, ListObjectVersions (s3:ListBucketVersions), DeleteObject of a version (s3:DeleteObjectVersion)
and ListObjectsV2 (s3:ListBucket: what failed erasures of a user left, under erasures/).
"""

from __future__ import annotations

import shutil
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import ClientError

from clickstream.domain.ports import Lake  # the port these implement; imported from here by older callers
from clickstream.settings import Settings
from clickstream.storage.plumbing import service_config

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


class FileLake:
    """A folder standing in for the bucket (local runs)."""

    def __init__(self, root: Path) -> None:
        self._root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self._root / key).resolve()
        if not path.is_relative_to(self._root):
            raise ValueError(f"key {key!r} leaves the lake")
        return path

    def uri(self, key: str) -> str:
        return "file://" + urllib.parse.quote(str(self._path(key)), safe="/=")

    def put_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        shutil.copyfile(path, partial)
        partial.replace(target)  # readers never see half an object

    def put_bytes(self, key: str, data: bytes) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_bytes(data)
        partial.replace(target)

    def get_bytes(self, key: str) -> bytes | None:
        path = self._path(key)
        return path.read_bytes() if path.exists() else None

    def fetch(self, key: str, path: Path) -> bool:
        source = self._path(key)
        if not source.exists():
            return False
        shutil.copyfile(source, path)
        return True

    def delete_noncurrent_versions(self, folder: str) -> int:
        _check_folder(folder)
        return 0  # a folder on disk keeps no versions

    def keys(self, prefix: str) -> list[str]:
        folder = self._path(prefix)
        if not folder.is_dir():
            return []
        found = (path for path in folder.rglob("*") if path.is_file() and not path.name.startswith("."))
        return sorted(path.relative_to(self._root).as_posix() for path in found)

    def remove(self, key: str) -> int:
        path = self._path(key)
        if not path.exists():
            return 0
        path.unlink()
        return 1


class S3Lake:
    """The stack's dataset bucket."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def uri(self, key: str) -> str:
        return f"s3://{self._bucket}/{key}"

    def put_file(self, key: str, path: Path) -> None:
        self._client.upload_file(str(path), self._bucket, key)  # multipart above 8 MB, parts in parallel

    def put_bytes(self, key: str, data: bytes) -> None:
        self._client.put_object(Bucket=self._bucket, Key=key, Body=data)

    def get_bytes(self, key: str) -> bytes | None:
        try:
            body: bytes = self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return body

    def fetch(self, key: str, path: Path) -> bool:
        data = self.get_bytes(key)
        if data is None:
            return False
        path.write_bytes(data)
        return True

    def delete_noncurrent_versions(self, folder: str) -> int:
        _check_folder(folder)
        history: dict[str, list[tuple[str, bool, bool]]] = {}  # key -> (version id, is latest, is a marker)
        for page in self._client.get_paginator("list_object_versions").paginate(Bucket=self._bucket, Prefix=folder):
            for version in page.get("Versions", []):
                history.setdefault(version["Key"], []).append((version["VersionId"], version["IsLatest"], False))
            for marker in page.get("DeleteMarkers", []):
                history.setdefault(marker["Key"], []).append((marker["VersionId"], marker["IsLatest"], True))
        doomed = []
        for key, versions in history.items():
            deleted = any(latest and is_marker for _, latest, is_marker in versions)  # only its history is left
            doomed += [(key, version_id) for version_id, latest, _ in versions if deleted or not latest]
        for key, version_id in doomed:
            self._client.delete_object(Bucket=self._bucket, Key=key, VersionId=version_id)
        return len(doomed)

    def keys(self, prefix: str) -> list[str]:
        pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def remove(self, key: str) -> int:
        """Each version and delete marker of exactly `key` (the listing's prefix also finds longer keys),
        deleted one by one, by version id."""
        doomed: list[str] = []
        for page in self._client.get_paginator("list_object_versions").paginate(Bucket=self._bucket, Prefix=key):
            entries = [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
            doomed += [entry["VersionId"] for entry in entries if entry.get("Key") == key]
        for version_id in doomed:
            self._client.delete_object(Bucket=self._bucket, Key=key, VersionId=version_id)
        return len(doomed)


def _check_folder(folder: str) -> None:
    if not folder.endswith("/"):
        raise ValueError(f"{folder!r} is not a folder: a prefix without '/' would reach its siblings too")


def lake_from_settings(settings: Settings) -> Lake:
    if settings.lake_bucket:
        config = service_config(settings)
        return S3Lake(boto3.session.Session().client("s3", config=config), settings.lake_bucket)
    return FileLake(Path(settings.lake_dir))


__all__ = ["FileLake", "Lake", "S3Lake", "lake_from_settings"]
