"""Server-side check of an AWS SigV4 signature, as API Gateway's AWS_IAM authoriser does it.

The local server (`LOCAL_AUTH=iam`) calls :func:`is_signed_by` with what it received and answers 403
``{"message": "Forbidden"}`` when it returns ``False``; the client's tests use it too. The signature is
recomputed by botocore's own signer from the received request and compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from calendar import timegm
from collections.abc import Mapping

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


def is_signed_by(
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
) -> bool:
    """Whether a received request carries a valid SigV4 signature by ``access_key``/``secret_key``.

    ``path`` and ``query_string`` are as received on the wire (still percent-encoded); ``headers`` is
    looked up case-insensitively. False when unsigned, signed by other credentials or for another
    region or service, changed after signing (method, path, query, a signed header or the body), or
    dated more than 5 minutes from ``now`` (default: the current time).
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    match = _AUTHORIZATION.match(lowered.get("authorization", ""))
    amz_date = lowered.get("x-amz-date", "")
    if match is None or not _is_recent(amz_date, time.time() if now is None else now):
        return False
    if match["credential"] != f"{access_key}/{amz_date[:8]}/{region}/{service}/aws4_request":
        return False
    signed_names = match["signed_headers"].split(";")
    if not {"host", "x-amz-date"} <= set(signed_names) or any(name not in lowered for name in signed_names):
        return False
    # botocore trusts a declared payload hash; the body must match it.
    declared_hash = lowered.get("x-amz-content-sha256")
    if declared_hash is not None and declared_hash != hashlib.sha256(body).hexdigest():
        return False

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
    return hmac.compare_digest(expected, match["signature"])


def _is_recent(amz_date: str, now: float) -> bool:
    try:
        signed_at = timegm(time.strptime(amz_date, AMZ_DATE_FORMAT))
    except ValueError:
        return False
    return abs(now - signed_at) <= MAX_CLOCK_SKEW_SECONDS
