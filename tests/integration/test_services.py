"""The service fixtures work for real: broker, S3 server, Spark standalone cluster."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import uuid

import pytest

from tests.harness import KafkaBroker, S3Server, spark_env

pytestmark = pytest.mark.integration


def _roundtrip(bootstrap: str, topic: str, payload: bytes) -> bytes:
    from confluent_kafka import Consumer, Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    producer.produce(topic, key=b"k", value=payload)
    assert producer.flush(30) == 0, "message not delivered"
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"g-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([topic])
        for _ in range(60):
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            value = msg.value()
            assert value is not None
            return bytes(value)
    finally:
        consumer.close()
    raise AssertionError(f"no message consumed from {topic}")


def _create_topic(bootstrap: str, topic: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    future = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic]
    future.result(timeout=30)


def test_kafka_broker_produce_and_consume(kafka_broker: KafkaBroker) -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    _create_topic(kafka_broker.bootstrap, topic)
    payload = uuid.uuid4().bytes
    assert _roundtrip(kafka_broker.bootstrap, topic, payload) == payload


def test_kafka_broker_restarts_on_same_port_with_its_data(own_kafka_broker: KafkaBroker) -> None:
    from confluent_kafka.admin import AdminClient

    topic = "survives-restart"
    _create_topic(own_kafka_broker.bootstrap, topic)
    payload = b"before the outage"
    assert _roundtrip(own_kafka_broker.bootstrap, topic, payload) == payload

    own_kafka_broker.stop()
    assert not own_kafka_broker.running
    admin = AdminClient({"bootstrap.servers": own_kafka_broker.bootstrap})
    with pytest.raises(Exception):  # noqa: B017 - any KafkaException: nothing answers
        admin.list_topics(timeout=2)

    own_kafka_broker.start()
    assert own_kafka_broker.running
    assert _roundtrip(own_kafka_broker.bootstrap, topic, b"ignored") == payload


def test_s3_server_put_get_object(s3_server: S3Server) -> None:
    client = s3_server.client()
    assert client.bucket_exists(s3_server.bucket)
    body = uuid.uuid4().bytes * 100
    key = f"probe/{uuid.uuid4().hex}.bin"
    client.put_object(s3_server.bucket, key, io.BytesIO(body), length=len(body))
    response = client.get_object(s3_server.bucket, key)
    try:
        assert response.read() == body
    finally:
        response.close()
        response.release_conn()


def test_s3_server_holds_a_delta_table(s3_server: S3Server) -> None:
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    uri = f"s3://{s3_server.bucket}/t-{uuid.uuid4().hex[:8]}"
    options = s3_server.storage_options()
    first = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": ["a", "b", "c"]})
    write_deltalake(uri, first, storage_options=options)
    write_deltalake(uri, first.slice(0, 1), mode="append", storage_options=options)

    table = DeltaTable(uri, storage_options=options)
    assert table.version() == 1
    data = table.to_pyarrow_table().sort_by("id")
    assert data.column("id").to_pylist() == [1, 1, 2, 3]
    assert DeltaTable(uri, version=0, storage_options=options).to_pyarrow_table().num_rows == 3


def test_s3_server_refuses_overwrite_with_if_none_match(s3_server: S3Server) -> None:
    """The primitive Delta commits rely on: PUT If-None-Match: * on an existing key is a 412."""
    from minio.error import S3Error

    client = s3_server.client()
    key = f"cond/{uuid.uuid4().hex}"
    headers = {"If-None-Match": "*"}
    # minio's public API has no conditional PUT; its signed request helper does
    client._execute("PUT", s3_server.bucket, key, body=b"first", headers=headers)
    with pytest.raises(S3Error) as refused:
        client._execute("PUT", s3_server.bucket, key, body=b"second", headers=headers)
    assert refused.value.code == "PreconditionFailed"
    assert client.get_object(s3_server.bucket, key).read() == b"first"


def test_s3_server_keeps_concurrent_delta_commits(s3_server: S3Server) -> None:
    """Conditional PUT (If-None-Match) must hold: parallel appends lose nothing."""
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    uri = f"s3://{s3_server.bucket}/race-{uuid.uuid4().hex[:8]}"
    options = s3_server.storage_options()
    write_deltalake(uri, pa.table({"w": pa.array([-1], pa.int64())}), storage_options=options)

    def append(writer: int) -> None:
        batch = pa.table({"w": pa.array([writer] * 5, pa.int64())})
        write_deltalake(uri, batch, mode="append", storage_options=options)

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(append, range(6)))

    table = DeltaTable(uri, storage_options=options)
    assert table.version() == 6
    counts = table.to_pyarrow_table().group_by("w").aggregate([("w", "count")]).to_pylist()
    assert sorted((row["w"], row["w_count"]) for row in counts) == [(-1, 1)] + [
        (w, 5) for w in range(6)
    ]


def test_s3_server_serves_duckdb_delta_scan(s3_server: S3Server) -> None:
    import duckdb
    import pyarrow as pa
    from deltalake import write_deltalake

    from smarttrader_cli.lake.query import duckdb_config, extension_path, s3_secret_sql

    uri = f"s3://{s3_server.bucket}/duck-{uuid.uuid4().hex[:8]}"
    options = s3_server.storage_options()
    write_deltalake(uri, pa.table({"x": pa.array(range(10), pa.int64())}), storage_options=options)
    con = duckdb.connect(config=duckdb_config())
    for name in ("httpfs", "delta"):
        con.execute(f"LOAD '{extension_path(name)}'")
    con.execute(s3_secret_sql(options))
    row = con.execute(f"SELECT count(*), sum(x) FROM delta_scan('{uri}')").fetchone()
    assert row == (10, 45)


def test_s3_server_restarts_with_its_data(tmp_path) -> None:
    server = S3Server(tmp_path / "s3")
    server.start()
    try:
        client = server.client()
        client.put_object(server.bucket, "k", io.BytesIO(b"v"), length=1)
        server.stop()
        assert not server.running
        server.start()
        assert client.get_object(server.bucket, "k").read() == b"v"
    finally:
        server.stop()


@pytest.mark.spark
def test_spark_standalone_runs_a_job(spark_standalone: str, tmp_path) -> None:
    script = textwrap.dedent(
        f"""
        from pyspark.sql import SparkSession
        spark = (SparkSession.builder.master({spark_standalone!r}).appName("st-probe")
                 .config("spark.executor.memory", "512m").config("spark.cores.max", "1")
                 .config("spark.driver.host", "127.0.0.1")
                 .config("spark.jars.ivy", {str(tmp_path / "ivy")!r})
                 .config("spark.ui.enabled", "false").getOrCreate())
        row = spark.range(1000).selectExpr("count(*) AS n", "sum(id) AS s").collect()[0]
        executors = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size()
        print("RESULT", row.n, row.s, executors)
        spark.stop()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=spark_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    # the driver plus one executor on the standalone worker
    assert result == ["RESULT 1000 499500 2"], done.stdout


def test_kafka_cluster_id_is_never_read_as_an_option(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.harness import kafka

    leading_dash = uuid.UUID(bytes=b"\xf8" + bytes(15))  # base64url "-A..."
    ids = iter([leading_dash, uuid.UUID(int=1)])
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(ids))
    assert kafka._kafka_cluster_id() == "AAAAAAAAAAAAAAAAAAAAAQ"
