"""SigV4 signing of requests for an API Gateway API with the AWS_IAM authoriser, done by botocore."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError
from requests import PreparedRequest
from requests.auth import AuthBase

from .errors import ConfigurationError

SERVICE = "execute-api"

# https://<api-id>.execute-api.<region>.amazonaws.com[.cn], also with a VPC endpoint id in front.
_EXECUTE_API_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


def region_from_url(url: str) -> str | None:
    """The region named in an ``execute-api`` URL's host, or ``None`` for any other host."""
    match = _EXECUTE_API_HOST.search((urlsplit(url).hostname or "").lower())
    return match.group(1) if match else None


def botocore_session(profile: str | None) -> botocore.session.Session:
    try:
        return botocore.session.Session(profile=profile)
    except BotoCoreError as error:  # e.g. a malformed config file
        raise ConfigurationError(str(error)) from error


def resolve_region(base_url: str, region: str | None, session: botocore.session.Session) -> str:
    """The region to sign for: the explicit one, else the one in an execute-api URL (a signature for any
    other region is always refused there), else the profile's or environment's region."""
    if region:
        return region
    from_url = region_from_url(base_url)
    if from_url:
        return from_url
    try:
        configured = session.get_config_variable("region")
    except BotoCoreError as error:  # e.g. the profile does not exist
        raise ConfigurationError(str(error)) from error
    if isinstance(configured, str) and configured:
        return configured
    raise ConfigurationError(
        f"no AWS region to sign requests for {base_url}: pass region= (--region), "
        "set AWS_DEFAULT_REGION, or give the profile a region"
    )


def load_credentials(session: botocore.session.Session) -> Credentials:
    """The credentials of the standard chain (environment, profile, SSO, process, container, instance)."""
    try:
        credentials = session.get_credentials()
    except BotoCoreError as error:
        raise ConfigurationError(str(error)) from error
    if credentials is None:
        profile = session.profile or "default"
        raise ConfigurationError(
            f"no AWS credentials found (profile {profile!r}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "choose a profile with --profile / AWS_PROFILE, or run `aws configure` / `aws sso login`"
        )
    return credentials


class IamAuth(AuthBase):
    """Signs each request with SigV4 for ``execute-api`` just before it is sent.

    The credentials are read per request, so refreshable ones (SSO, assumed roles, instance and container
    roles) are renewed by botocore as they approach expiry.
    """

    # Only these of the headers requests sends are signed: the others (User-Agent, Accept-Encoding,
    # Connection, Content-Length) may be changed by proxies without changing the request's meaning.
    SIGNED_HEADERS = ("Content-Type",)

    def __init__(self, credentials: Credentials, region: str) -> None:
        self.credentials = credentials
        self.region = region

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        body = request.body.encode() if isinstance(request.body, str) else request.body
        signed = AWSRequest(
            method=request.method,
            url=request.url,
            data=body or b"",
            headers={name: request.headers[name] for name in self.SIGNED_HEADERS if name in request.headers},
        )
        try:
            frozen = self.credentials.get_frozen_credentials()
        except BotoCoreError as error:  # a refresh that failed
            raise ConfigurationError(f"could not refresh AWS credentials: {error}") from error
        SigV4Auth(frozen, SERVICE, self.region).add_auth(signed)
        request.headers.update(dict(signed.headers.items()))
        return request
