"""The pseudonymisation key's secret (template.yaml UserIdKeySecret), made locally on the embedded moto.

With USER_ID_HASHING=hmac, a local run reads its key from Secrets Manager as the stack does, from a secret
holding USER_ID_HMAC_KEY: the value `make run` defaults to is public and for local runs only.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import Any

import boto3

from local.template import load_template

KEY_RESOURCE = "UserIdKeySecret"
# Public, in the repository: a local run's pseudonyms protect nothing. AWS generates the stack's own key.
LOCAL_ONLY_HMAC_KEY = "local-only-user-id-key-not-a-secret"  # nosec B105


def ensure_user_id_secret(client: Any, key: str) -> str:
    """The secret holding `key`, created when missing (with the template's description); its ARN."""
    description = load_template()["Resources"][KEY_RESOURCE]["Properties"]["Description"]
    name = f"local-{KEY_RESOURCE}"
    try:
        return str(client.describe_secret(SecretId=name)["ARN"])
    except client.exceptions.ResourceNotFoundException:
        return str(client.create_secret(Name=name, Description=description, SecretString=key)["ARN"])


def apply_user_id_secret(aws_endpoint: str, environ: MutableMapping[str, str] = os.environ) -> None:
    """With USER_ID_HASHING=hmac and no secret named yet: make it on the embedded AWS and name it."""
    if environ.get("USER_ID_HASHING") != "hmac" or environ.get("USER_ID_HMAC_SECRET_ARN"):
        return
    client = boto3.session.Session().client("secretsmanager", endpoint_url=aws_endpoint)
    key = environ.get("USER_ID_HMAC_KEY") or LOCAL_ONLY_HMAC_KEY
    environ["USER_ID_HMAC_SECRET_ARN"] = ensure_user_id_secret(client, key)
