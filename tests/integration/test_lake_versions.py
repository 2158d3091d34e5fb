"""The older versions an erasure deletes from the versioned dataset bucket (contract 17.4): those of every
object under the rewritten batch's folders, never a current one, never another folder's (not even one whose
name starts the same); and a part it no longer needs, whole."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.exceptions import ClientError

from clickstream.storage.lake import FileLake, S3Lake
from local.dynamodb import EmbeddedAws
from local.lambda_runtime import running_as
from local.template import load_template

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

FOLDER = "sessions/batch_id=b-1/"
KEY = f"{FOLDER}part-00000.jsonl.gz"
OTHER = f"{FOLDER}part-00001.jsonl.gz"
SIBLING = "sessions/batch_id=b-10/part-00000.jsonl.gz"  # a listing by "sessions/batch_id=b-1" finds it too
LONGER = f"{KEY}.other"  # removing KEY lists it too


@pytest.fixture
def bucket(dynamodb: EmbeddedAws) -> tuple[S3Client, str]:
    """A bucket versioned as the template's DatasetBucket is, on the embedded moto."""
    client: S3Client = boto3.session.Session().client("s3", endpoint_url=dynamodb.endpoint, region_name="us-east-1")
    name = "erasure-versions"
    client.create_bucket(Bucket=name)
    versioning = load_template()["Resources"]["DatasetBucket"]["Properties"]["VersioningConfiguration"]
    client.put_bucket_versioning(Bucket=name, VersioningConfiguration=versioning)
    for response in client.get_paginator("list_object_versions").paginate(Bucket=name):  # a bucket used before
        for entry in [*response.get("Versions", []), *response.get("DeleteMarkers", [])]:
            client.delete_object(Bucket=name, Key=entry["Key"], VersionId=entry["VersionId"])
    return client, name


def versions(client: S3Client, bucket: str, key: str) -> list[tuple[str, bool]]:
    """(what, is_latest) of each version of exactly `key`: its body, or "marker"."""
    response = client.list_object_versions(Bucket=bucket, Prefix=key)
    found = []
    for version in response.get("Versions", []):
        if version["Key"] == key:
            body = client.get_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])["Body"].read()
            found.append((body.decode(), version["IsLatest"]))
    found += [("marker", marker["IsLatest"]) for marker in response.get("DeleteMarkers", []) if marker["Key"] == key]
    return sorted(found)


def test_the_older_versions_in_the_folder_go_and_the_current_ones_stay(bucket: tuple[S3Client, str]) -> None:
    client, name = bucket
    lake = S3Lake(client, name)
    for body in ("with the user", "rewritten once", "rewritten"):
        lake.put_bytes(KEY, body.encode())
    lake.put_bytes(OTHER, b"from a retried export")
    lake.put_bytes(OTHER, b"kept")
    lake.put_bytes(SIBLING, b"old")
    lake.put_bytes(SIBLING, b"new")
    assert lake.delete_noncurrent_versions(FOLDER) == 3
    assert versions(client, name, KEY) == [("rewritten", True)]
    assert versions(client, name, OTHER) == [("kept", True)]
    assert lake.get_bytes(KEY) == b"rewritten"
    assert versions(client, name, SIBLING) == [("new", True), ("old", False)]
    assert lake.delete_noncurrent_versions(FOLDER) == 0  # run again: nothing more
    with pytest.raises(ValueError, match="not a folder"):
        lake.delete_noncurrent_versions(FOLDER.rstrip("/"))


def test_delete_markers_go_too_and_a_removed_part_leaves_nothing(bucket: tuple[S3Client, str]) -> None:
    client, name = bucket
    lake = S3Lake(client, name)
    lake.put_bytes(KEY, b"with the user")
    client.delete_object(Bucket=name, Key=KEY)  # a delete marker over it
    lake.put_bytes(KEY, b"rewritten")
    lake.put_bytes(OTHER, b"with the user")
    client.delete_object(Bucket=name, Key=OTHER)  # deleted: its latest is a marker, only history is left
    assert lake.delete_noncurrent_versions(FOLDER) == 4
    assert versions(client, name, KEY) == [("rewritten", True)]
    assert versions(client, name, OTHER) == []
    lake.put_bytes(LONGER, b"another key")
    assert lake.remove(KEY) == 1
    assert versions(client, name, KEY) == []
    assert lake.get_bytes(KEY) is None
    assert lake.remove(KEY) == 0
    assert versions(client, name, LONGER) == [("another key", True)]


def test_pages_of_versions_are_all_read(bucket: tuple[S3Client, str]) -> None:
    client, name = bucket
    lake = S3Lake(client, name)
    for n in range(1_005):  # more than one ListObjectVersions page (1,000)
        client.put_object(Bucket=name, Key=KEY, Body=str(n).encode())
    assert lake.delete_noncurrent_versions(FOLDER) == 1_004
    assert versions(client, name, KEY) == [("1004", True)]


def test_the_export_may_neither_list_nor_delete_versions(
    bucket: tuple[S3Client, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, name = bucket
    monkeypatch.setenv("LAKE_BUCKET", name)  # the bucket the functions' policies name
    lake = S3Lake(client, name)
    lake.put_bytes(KEY, b"with the user")
    lake.put_bytes(KEY, b"rewritten")
    [older] = [v["VersionId"] for v in client.list_object_versions(Bucket=name)["Versions"] if not v["IsLatest"]]
    with running_as("ExportFunction"):
        with pytest.raises(ClientError, match="AccessDenied"):
            lake.delete_noncurrent_versions(FOLDER)
        with pytest.raises(ClientError, match="AccessDenied"):
            client.delete_object(Bucket=name, Key=KEY, VersionId=older)
    assert versions(client, name, KEY) == [("rewritten", True), ("with the user", False)]


def test_a_folder_keeps_no_versions(tmp_path: Path) -> None:
    lake = FileLake(tmp_path)
    lake.put_bytes(KEY, b"rewritten")
    assert lake.delete_noncurrent_versions(FOLDER) == 0
    assert lake.get_bytes(KEY) == b"rewritten"
    assert lake.remove(KEY) == 1
    assert lake.get_bytes(KEY) is None
