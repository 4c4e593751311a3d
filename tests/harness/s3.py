"""An S3-compatible server (versitygw, POSIX backend) on loopback with one bucket.

versitygw rather than MinIO: it has conditional writes, and the Go proxy refuses MinIO server
modules here. Clients talk to it with the ``minio`` Python package.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from smarttrader_cli.ops.cache import bin_dir
from tests.harness.process import INSTALL_HINT, MissingDependency, Service, free_port

S3_BINARY = "versitygw"


class S3Server(Service):
    """S3-compatible server (versitygw, POSIX backend) on loopback with one bucket."""

    region = "us-east-1"

    def __init__(self, workdir: Path, bucket: str = "smart-trader") -> None:
        self.binary = bin_dir() / S3_BINARY
        if not os.access(self.binary, os.X_OK):
            raise MissingDependency(f"S3 server binary {self.binary} not found; {INSTALL_HINT}")
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host_port = f"127.0.0.1:{self.port}"
        self.endpoint = f"http://{self.host_port}"
        super().__init__("s3 server", workdir, "server.out", address=self.endpoint)
        self.access_key = "st-test-access"
        self.secret_key = "st-test-secret-key-0123456789"
        self.bucket = bucket

    def client(self) -> Any:
        """A ``minio`` Python client for this server."""
        from minio import Minio

        return Minio(self.host_port, access_key=self.access_key, secret_key=self.secret_key,
                     secure=False, region=self.region)  # fmt: skip

    def storage_options(self) -> dict[str, str]:
        """deltalake storage options (the endpoint WITH its http:// scheme)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_ALLOW_HTTP": "true",
        }

    def env(self) -> dict[str, str]:
        """AWS_* variables for a process (st reads secrets only from the environment)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def command(self) -> list[str]:
        (self.workdir / "meta").mkdir(exist_ok=True)
        return [str(self.binary), "--access", self.access_key, "--secret", self.secret_key,
                "--port", self.host_port, "--region", self.region,
                "posix", "--sidecar", str(self.workdir / "meta"), str(self.data_dir)]  # fmt: skip

    def process_env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ROOT_", "VGW_"))}

    def answers(self) -> bool:
        """True once the server lists buckets."""
        self.client().list_buckets()
        return True

    def ready(self) -> None:
        """Create the bucket on first start."""
        client = self.client()
        if not client.bucket_exists(self.bucket):
            client.make_bucket(self.bucket)
