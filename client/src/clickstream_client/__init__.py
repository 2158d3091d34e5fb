"""Python client of the clickstream service's HTTP API.

>>> from clickstream_client import Client
>>> client = Client("https://abc123.execute-api.eu-west-1.amazonaws.com", iam=True)
>>> for session in client.iter_sessions("b-1700000000000-0123456789ab"):
...     print(session["session_number"], session["search_query"])
"""

from importlib.metadata import PackageNotFoundError, version

from .client import Client
from .errors import (
    ClickstreamError,
    ConfigurationError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    InvalidRequest,
    NotFound,
    ServerError,
    Unavailable,
    WaitTimedOut,
)

try:
    __version__ = version("clickstream-client")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = [
    "ClickstreamError",
    "Client",
    "ConfigurationError",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "InvalidRequest",
    "NotFound",
    "ServerError",
    "Unavailable",
    "WaitTimedOut",
    "__version__",
]
