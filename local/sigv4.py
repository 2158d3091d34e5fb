"""Server-side check of an AWS SigV4 signature, as API Gateway's AWS_IAM authoriser does it.

The local server (`LOCAL_AUTH=iam`) calls :func:`signature_problem` with what it received and answers 403
``{"message": "Forbidden"}`` when there is one (logging why); the client's tests use :func:`is_signed_by`.
The signature is recomputed by botocore's own signer from the received request and compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from calendar import timegm
from collections.abc import Mapping
from typing import NotRequired, TypedDict, Unpack

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

ALGORITHM = "AWS4-HMAC-SHA256"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_CLOCK_SKEW_SECONDS = 300  # API Gateway refuses a signature more than 5 minutes from its clock

_AUTHORIZATION = re.compile(
    ALGORITHM + r" Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed_headers>[^,\s]+),"
    r"\s*Signature=(?P<signature>[0-9a-f]{64})$"
)


class _ReceivedRequestSigner(SigV4Auth):
    """botocore's signer, made to sign exactly the headers the client listed (botocore itself leaves out
    a few, such as User-Agent, that another client may well have signed)."""

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        headers = HTTPHeaders()
        for name, value in request.headers.items():
            headers[name.lower()] = value
        return headers


class ReceivedRequest(TypedDict):
    """What :func:`signature_problem` checks, as received."""

    method: str
    path: str
    query_string: str
    headers: Mapping[str, str]
    body: bytes
    access_key: str
    secret_key: str
    region: str
    service: NotRequired[str]
    now: NotRequired[float | None]


def is_signed_by(**request: Unpack[ReceivedRequest]) -> bool:
    """Whether a received request carries a valid SigV4 signature by ``access_key``/``secret_key``.

    ``path`` and ``query_string`` are as received on the wire (still percent-encoded); ``headers`` is
    looked up case-insensitively. False when unsigned, signed by other credentials or for another
    region or service, changed after signing (method, path, query, a signed header or the body), or
    dated more than 5 minutes from ``now`` (default: the current time).
    """
    return signature_problem(**request) is None


def signature_problem(
    *,
    method: str,
    path: str,
    query_string: str,
    headers: Mapping[str, str],
    body: bytes,
    access_key: str,
    secret_key: str,
    region: str,
    service: str = "execute-api",
    now: float | None = None,
) -> str | None:
    """Why a received request is not validly signed by ``access_key`` (for the server's log), or None."""
    lowered = {name.lower(): value for name, value in headers.items()}
    match = _AUTHORIZATION.match(lowered.get("authorization", ""))
    if match is None:
        return f"unsigned (no {ALGORITHM} Authorization header)"
    amz_date = lowered.get("x-amz-date", "")
    signed_names = match["signed_headers"].split(";")
    problem = (
        _date_problem(amz_date, time.time() if now is None else now)
        or _credential_problem(match["credential"], amz_date, access_key, f"{region}/{service}")
        or _headers_problem(signed_names, lowered, body)
    )
    if problem is not None:
        return problem
    received = AWSRequest(
        method=method,
        url=f"http://{lowered['host']}{path}" + (f"?{query_string}" if query_string else ""),
        data=body,
        headers={name: lowered[name] for name in signed_names},
    )
    received.context["timestamp"] = amz_date
    signer = _ReceivedRequestSigner(Credentials(access_key, secret_key), service, region)
    canonical_request = signer.canonical_request(received)
    expected = signer.signature(signer.string_to_sign(received, canonical_request), received)
    if not hmac.compare_digest(expected, match["signature"]):
        return "bad signature (another secret key, or the request changed after signing)"
    return None


def _credential_problem(credential: str, amz_date: str, access_key: str, region_service: str) -> str | None:
    key, _, scope = credential.partition("/")
    if key != access_key:
        return f"unknown access key {key!r}"
    expected = f"{amz_date[:8]}/{region_service}/aws4_request"
    return None if scope == expected else f"credential scope {scope!r} is not {expected}"


def _headers_problem(signed_names: list[str], headers: Mapping[str, str], body: bytes) -> str | None:
    if not {"host", "x-amz-date"} <= set(signed_names) or any(name not in headers for name in signed_names):
        return "the signed headers must include host and x-amz-date, and be present"
    # botocore trusts a declared payload hash; the body must match it.
    declared_hash = headers.get("x-amz-content-sha256")
    if declared_hash is not None and declared_hash != hashlib.sha256(body).hexdigest():
        return "the body does not match X-Amz-Content-Sha256"
    return None


def _date_problem(amz_date: str, now: float) -> str | None:
    try:
        signed_at = timegm(time.strptime(amz_date, AMZ_DATE_FORMAT))
    except ValueError:
        return f"no valid X-Amz-Date ({amz_date!r})"
    if abs(now - signed_at) > MAX_CLOCK_SKEW_SECONDS:
        skew = f"{abs(now - signed_at):.0f} s off the server's clock (at most {MAX_CLOCK_SKEW_SECONDS})"
        return f"stale date: X-Amz-Date {amz_date} is {skew}"
    return None
