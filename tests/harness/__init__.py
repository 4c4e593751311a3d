"""The test harness: real services on loopback and test configs.

- ``process``: ``free_port``, ``wait_until``, ``cached_binary``, ``MissingDependency`` and the ``Service`` base
  (``start``/``stop``/``kill``/``running``) every server below builds on.
- ``kafka``: ``KafkaBroker``, a single-node KRaft Apache Kafka.
- ``s3``: ``S3Server``, versitygw with one bucket.
- ``spark``: ``SparkStandalone`` (a master and one worker) and ``spark_env``.
- ``config``: ``write_config``, the shipped defaults plus dotted overrides.

Binaries and jars come from the project cache filled by ``scripts/install-deps.sh`` (see
``smarttrader_cli.ops.cache``).
"""

from tests.harness.config import write_config
from tests.harness.kafka import KafkaBroker
from tests.harness.process import (
    MissingDependency,
    Service,
    cached_binary,
    free_port,
    missing,
    wait_until,
)
from tests.harness.s3 import S3Server
from tests.harness.spark import SparkStandalone, spark_env

__all__ = [
    "KafkaBroker",
    "MissingDependency",
    "S3Server",
    "Service",
    "SparkStandalone",
    "cached_binary",
    "free_port",
    "missing",
    "spark_env",
    "wait_until",
    "write_config",
]
