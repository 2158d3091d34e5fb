"""Reading a batch's relevance judgments from where its dataset keeps them: ``s3://`` with the caller's own
AWS credentials (botocore, streamed), ``file://`` for a local lake. The stored file is gzip JSON Lines; the
lines are handed on as stored, gunzipped."""

from __future__ import annotations

import gzip
import io
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import botocore.session
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from .auth import botocore_session
from .errors import ClickstreamError, ConfigurationError, Forbidden, NotFound

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def judgments_of(batch: dict[str, Any]) -> dict[str, Any]:
    """The batch view's ``dataset.judgments`` ({uri, pairs, bytes, sha256}); NotFound while it has none."""
    dataset = batch.get("dataset") or {}
    judgments = dataset.get("judgments")
    if not isinstance(judgments, dict) or not judgments.get("uri"):
        state = dataset.get("status") or batch.get("status") or "unknown"
        raise NotFound(f"batch {batch.get('batch_id')} has no judgments yet (its dataset is {state})")
    return judgments


def s3_client(session: botocore.session.Session, region: str | None) -> S3Client:
    return cast("S3Client", session.create_client("s3", region_name=region))


@contextmanager
def opened(uri: str, *, profile: str | None, region: str | None) -> Iterator[IO[bytes]]:
    """The stored (gzip) bytes at ``uri``, as a stream."""
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme == "file":
        path = Path(urllib.request.url2pathname(parsed.path))
        try:
            stream = path.open("rb")
        except FileNotFoundError as error:
            raise NotFound(f"no judgments at {uri}") from error
        with stream:
            yield stream
        return
    if parsed.scheme != "s3":
        raise ConfigurationError(f"cannot read judgments from {uri!r}: expected an s3:// or file:// URI")
    body = _s3_body(parsed.netloc, parsed.path.lstrip("/"), profile=profile, region=region)
    try:
        yield body
    finally:
        body.close()


def _s3_body(bucket: str, key: str, *, profile: str | None, region: str | None) -> Any:
    where = f"s3://{bucket}/{key}"
    try:
        return s3_client(botocore_session(profile), region).get_object(Bucket=bucket, Key=key)["Body"]
    except NoCredentialsError as error:
        raise ConfigurationError(f"no AWS credentials to read {where}: set a profile or AWS_* variables") from error
    except NoRegionError as error:
        raise ConfigurationError(f"no AWS region to read {where} in: pass --region") from error
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message") or code
        if code in ("NoSuchKey", "NoSuchBucket", "404"):
            raise NotFound(f"no judgments at {where}") from error
        if code in ("AccessDenied", "403"):
            raise Forbidden(f"not allowed to read {where}: {message}") from error
        raise ClickstreamError(f"cannot read {where}: {message}") from error
    except BotoCoreError as error:
        raise ClickstreamError(f"cannot read {where}: {error}") from error


def judgment_lines(stored: IO[bytes]) -> Iterator[str]:
    """The gunzipped lines of a stored judgments file, each ending in a newline."""
    with gzip.GzipFile(fileobj=stored, mode="rb") as unzipped, io.TextIOWrapper(unzipped, encoding="utf-8") as text:
        try:
            for line in text:
                yield line if line.endswith("\n") else line + "\n"
        except (OSError, EOFError) as error:  # gzip's own errors: a truncated or foreign file
            raise ClickstreamError(f"the judgments file is not readable gzip: {error}") from error
