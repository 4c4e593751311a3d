"""Where the lake's files live: storage options from the config, and what a store error means."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smarttrader_cli.config import LoadedConfig


def lake_storage_options(loaded: LoadedConfig) -> dict[str, str]:
    """Storage options for deltalake: config values plus credentials from the environment."""
    options = dict(loaded.config.lake.storage_options)
    secrets = loaded.secrets
    if loaded.config.lake.root.startswith("s3://"):
        if secrets.aws_access_key_id:
            options.setdefault("AWS_ACCESS_KEY_ID", secrets.aws_access_key_id)
        if secrets.aws_secret_access_key:
            options.setdefault("AWS_SECRET_ACCESS_KEY", secrets.aws_secret_access_key)
        options.setdefault("AWS_REGION", os.environ.get("AWS_REGION", "us-east-1"))
        endpoint = options.get("AWS_ENDPOINT_URL", "")
        if endpoint.startswith("http://"):
            options.setdefault("AWS_ALLOW_HTTP", "true")
        # Conditional PUT makes concurrent commits safe without a lock table.
        options.setdefault("AWS_CONDITIONAL_PUT", "etag")
        options.setdefault("AWS_S3_ALLOW_UNSAFE_RENAME", "true")
    return options


def describe_error(exc: BaseException | None) -> str:
    """An object-store or deltalake error in one line, with what to check when known."""
    text = _ANSI.sub("", str(exc)).strip() if exc else "unknown error"
    if not text:
        return type(exc).__name__
    first = text.splitlines()[0]
    detail = _object_store_detail(text)
    return f"{first}: {detail}" if detail else first


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# S3 error codes whose cause an operator can fix, and what to check.
_S3_HINTS = {
    "SignatureDoesNotMatch": "wrong credentials, check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
    "InvalidAccessKeyId": "unknown access key, check AWS_ACCESS_KEY_ID",
    "AccessDenied": "access denied, check the credentials and the bucket policy",
    "NoSuchBucket": "the bucket does not exist",
}


def _object_store_detail(text: str) -> str:
    """The useful part of a multi-line object-store error (its first line is often generic)."""
    code = re.search(r"<Code>([^<]+)</Code>", text)
    if code:
        status = re.search(r"\b([45]\d\d) [A-Z][A-Za-z ]*", text)
        prefix = f"{status.group(0).strip()} " if status else ""
        return f"{prefix}{code.group(1)} ({_S3_HINTS.get(code.group(1), 'see the server log')})"
    if "Connection refused" in text or "tcp connect error" in text:
        endpoint = re.search(r"https?://[^/\s]+", text)
        where = f" at {endpoint.group(0)}" if endpoint else ""
        return f"connection refused{where} (is the S3 server running?)"
    if "dns error" in text or "failed to lookup address" in text:
        return "the endpoint's host name does not resolve"
    return ""
