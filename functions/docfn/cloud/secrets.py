"""Secrets Manager reads: the cache auth token (ElastiCache with transit encryption + AUTH) and the
API keys of the VLM's OpenAI-compatible routes and of summarize's LLM endpoint."""

from __future__ import annotations

import json

from ..core.errors import ConfigurationError


def read_secret(arn: str, what: str = "the cache auth token") -> str:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        value = boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    except (BotoCoreError, ClientError) as exc:
        raise ConfigurationError(f"cannot read {what} from {arn}: {exc}") from exc
    # Either the bare token or a JSON object with an auth_token/password/api_key field.
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    if isinstance(parsed, dict):
        return str(parsed.get("auth_token") or parsed.get("password") or parsed.get("api_key") or "")
    return str(parsed)
