"""Config: precedence, types, file:line errors, redaction, init."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app
from smarttrader_cli.config import defaults_text, load_config
from smarttrader_cli.config.schema import Config, keys
from smarttrader_cli.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "st.yaml"
    path.write_text(text)
    return path


def test_defaults_load_without_a_file() -> None:
    loaded = load_config(None, env={}, search=False)
    assert loaded.path is None
    assert loaded.config.engine == "duckdb"
    assert loaded.config.gold.tiers.elite.min_trade_count == 10
    assert loaded.sources["gold.min_win_rate"] == "default"


def test_shipped_config_is_the_embedded_defaults() -> None:
    shipped = Path(__file__).parents[3] / "configs" / "smarttrader.yaml"
    assert shipped.read_text() == defaults_text()


def test_config_built_in_code_is_the_shipped_defaults(tmp_path: Path) -> None:
    shipped = write(tmp_path, defaults_text())
    assert load_config(shipped, env={}).config == Config()
    assert Config().gold.tiers.strong.min_roi == 0.15 and len(Config().pnl.quote_assets) == 4


def test_file_overrides_default_and_env_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "gold:\n  min_win_rate: 0.55\n  min_roi: 0.2\n")
    loaded = load_config(path, env={"ST_GOLD__MIN_ROI": "0.3"})
    assert loaded.config.gold.min_win_rate == 0.55
    assert loaded.sources["gold.min_win_rate"] == f"{path}:2"
    assert loaded.config.gold.min_roi == 0.3
    assert loaded.sources["gold.min_roi"] == "env ST_GOLD__MIN_ROI"
    assert loaded.config.gold.min_total_pnl == 10.0


def test_env_reaches_nested_keys_top_level_keys_and_maps(tmp_path: Path) -> None:
    env = {
        "ST_GOLD__TIERS__ELITE__MIN_ROI": "0.9",
        "ST_ENGINE": "spark",
        "ST_LAKE__STORAGE_OPTIONS__AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "ST_PNL__QUOTE_ASSETS": "A,B",
        "ST_WEBHOOK_AUTH_TOKEN": "not-a-config-key",
    }
    loaded = load_config(None, env=env, search=False)
    assert loaded.config.gold.tiers.elite.min_roi == 0.9
    assert loaded.config.engine == "spark"
    assert loaded.config.lake.storage_options == {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000"}
    assert loaded.config.pnl.quote_assets == ["A", "B"]


def test_config_hash_changes_with_values() -> None:
    a = load_config(None, env={}, search=False).hash
    b = load_config(None, env={"ST_GOLD__MIN_ROI": "0.5"}, search=False).hash
    assert a != b and len(a) == 16


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lake:\n  root: x\n  bogus: 1\n", ":3: unknown key 'lake.bogus'"),
        ("nosuch: 1\n", ":1: unknown key 'nosuch'"),
        ("gold:\n  min_roi: abc\n", ":2: gold.min_roi must be a number"),
        ("tokens:\n  limit: 1.5\n", ":2: tokens.limit must be an integer"),
        ("helius:\n  transaction_types: SWAP\n", ":2: helius.transaction_types must be a list"),
        ("gold: [\n", "invalid YAML"),
        ("engine: foo\n", ":1: engine must be one of duckdb, spark"),
        ("gold:\n  min_roi: 1\n  min_roi: 2\n", ":3: duplicate key gold.min_roi"),
        ("- a\n- b\n", ":1: config must be a mapping"),
        (
            "a:\n  b: 1\n c: 2\n",
            ":3: invalid YAML: expected <block end>, but found '<block mapping start>' "
            "(the block mapping opened at line 1)",
        ),
        ("stream:\n  backend: rabbit\n", ":2: stream.backend must be one of kafka, local"),
        ("engine: 3\n", ":1: engine must be one of duckdb, spark, got 3"),
        ("spark:\n  master: ''\n", ":2: spark.master must not be empty"),
        # ranges and choices, declared once in config/schema.py
        ("stream:\n  batch_size: 0\n", ":2: stream.batch_size must be >= 1, got 0"),
        ("stream:\n  partitions: 0\n", ":2: stream.partitions must be >= 1, got 0"),
        ("webhook:\n  port: 99999\n", ":2: webhook.port must be between 1 and 65535, got 99999"),
        ("webhook:\n  port: 0\n", ":2: webhook.port must be between 1 and 65535, got 0"),
        ("gold:\n  min_win_rate: .nan\n", ":2: gold.min_win_rate must be a finite number, got nan"),
        ("tokens:\n  min_liquidity: .inf\n", ":2: tokens.min_liquidity must be a finite number"),
        ("gold:\n  min_roi: -.inf\n", ":2: gold.min_roi must be a finite number, got -inf"),
        ("gold:\n  min_win_rate: 1.5\n", ":2: gold.min_win_rate must be between 0 and 1, got 1.5"),
        (
            "gold:\n  tiers:\n    elite:\n      min_trade_count: -1\n",
            ":4: gold.tiers.elite.min_trade_count must be >= 0, got -1",
        ),
        ("gold:\n  score:\n    roi_scale: 0\n", ":3: gold.score.roi_scale must be > 0, got 0.0"),
        (
            "gold:\n  score:\n    weight_win_rate: -0.1\n",
            ":3: gold.score.weight_win_rate must be >= 0, got -0.1",
        ),
        ("flows:\n  window_minutes: 0\n", ":2: flows.window_minutes must be >= 1, got 0"),
        (
            "memory:\n  duckdb_memory_fraction: 0\n",
            ":2: memory.duckdb_memory_fraction must be > 0 and <= 1, got 0.0",
        ),
        ("birdeye:\n  page_size: 500\n", ":2: birdeye.page_size must be between 1 and 100"),
        ("trades:\n  commit_every_wallets: 0\n", ":2: trades.commit_every_wallets must be >= 1"),
        ("ops:\n  disk_critical_percent: 120\n", ":2: ops.disk_critical_percent must be between"),
        (
            "ops:\n  disk_warning_percent: 95\n",
            ":2: ops.disk_warning_percent must be <= ops.disk_critical_percent, got 95.0 and 90.0",
        ),
        (
            "gold:\n  score:\n    weight_profitability: 0\n    weight_win_rate: 0\n"
            "    weight_activity: 0\n",
            ":3: gold.score weights must not all be 0",
        ),
        ("tokens:\n  sort_type: up\n", ":2: tokens.sort_type must be one of asc, desc, not 'up'"),
        ("helius:\n  webhook_type: raw\n", ":2: helius.webhook_type must be one of enhanced"),
    ],
)
def test_bad_files_name_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ST_GOLD__NOPE": "1"}, "unknown key 'gold.nope'"),
        ({"ST_TOKENS__LIMIT": "many"}, "env ST_TOKENS__LIMIT: must be an integer"),
        ({"ST_STREAM__BACKEND": "rabbit"}, "env ST_STREAM__BACKEND: stream.backend must be one of"),
        ({"ST_STREAM__BATCH_SIZE": "0"}, "env ST_STREAM__BATCH_SIZE: stream.batch_size must be"),
        ({"ST_GOLD__MIN_WIN_RATE": "nan"}, "env ST_GOLD__MIN_WIN_RATE: gold.min_win_rate must"),
        ({"ST_WEBHOOK__PORT": "70000"}, "env ST_WEBHOOK__PORT: webhook.port must be between 1 and"),
        ({"ST_BIRDEYE__TIMEOUT_SECONDS": "1e999"}, "birdeye.timeout_seconds must be a finite"),
    ],
)
def test_bad_env_overrides_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, env=env, search=False)


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml", env={})


def test_cli_show_redacts_secrets_and_names_sources(tmp_path: Path, monkeypatch) -> None:
    path = write(tmp_path, "gold:\n  min_win_rate: 0.55\n")
    monkeypatch.setenv("BIRDEYE_API_KEY", "sekrit-key-123")
    monkeypatch.delenv("HELIUS_API_KEY", raising=False)
    monkeypatch.setenv("ST_GOLD__MIN_ROI", "0.25")
    result = CliRunner().invoke(
        app, ["--config", str(path), "config", "show", "--format", "json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "sekrit-key-123" not in result.output
    rows = {r["key"]: r for r in json.loads(result.stdout)}
    assert rows["secrets.birdeye_api_key"]["value"] == "***redacted***"
    assert rows["secrets.helius_api_key"]["value"] == "(unset)"
    assert rows["gold.min_win_rate"] == {
        "key": "gold.min_win_rate",
        "value": 0.55,
        "source": f"{path}:2",
    }
    assert rows["gold.min_roi"]["source"] == "env ST_GOLD__MIN_ROI"
    assert rows["gold.tiers.elite.min_roi"]["source"] == "default"


def test_cli_validate_exit_codes(tmp_path: Path) -> None:
    good = write(tmp_path, "engine: duckdb\n")
    ok = CliRunner().invoke(app, ["--config", str(good), "config", "validate"])
    assert ok.exit_code == 0 and "config ok" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("stream:\n  topik: x\n")
    result = CliRunner().invoke(app, ["--config", str(bad), "config", "validate"])
    assert result.exit_code == 2
    assert f"{bad}:2: unknown key 'stream.topik'" in result.output
    assert "Traceback" not in result.output


def test_cli_init_writes_defaults_and_refuses_to_clobber(tmp_path: Path) -> None:
    target = tmp_path / "conf" / "st.yaml"
    first = CliRunner().invoke(app, ["config", "init", str(target)])
    assert first.exit_code == 0
    assert target.read_text() == defaults_text()
    assert load_config(target, env={}).config.engine == "duckdb"
    second = CliRunner().invoke(app, ["config", "init", str(target)])
    assert second.exit_code == 2 and "--force" in second.output


# --- ranges and choices, declared once (config/schema.py) ---------------------


def test_bounds_themselves_are_accepted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "webhook:\n  port: 65535\ngold:\n  min_win_rate: 1\n  min_roi: -0.5\n"
        "birdeye:\n  rate_limit_rps: 0\nmemory:\n  duckdb_memory_fraction: 1\n",
    )
    config = load_config(path, env={"ST_STREAM__BATCH_SIZE": "1"}).config
    assert (config.webhook.port, config.stream.batch_size) == (65535, 1)
    assert (config.gold.min_win_rate, config.birdeye.rate_limit_rps) == (1.0, 0.0)


def test_every_number_has_a_declared_range() -> None:
    missing = [k.dotted for k in keys() if k.type in (int, float) and k.rule is None]
    assert missing == [], "give these keys a rule in config/schema.py"


def test_the_dataclass_defaults_satisfy_the_rules_too() -> None:
    from smarttrader_cli.config.loader import check_values

    check_values(Config())  # configs built in code (tests, stages) are checked the same way


# What stages refused at run time (unknown engine or backend, empty spark.master), the
# loader refuses at load: `st config validate` says so in one line and exits 2.
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("engine: duckdb\nstream:\n  batch_size: 0\n", ":3: stream.batch_size must be >= 1, got 0"),
        ("engine: flink\n", ":1: engine must be one of duckdb, spark, not 'flink'"),
        ("stream:\n  backend: rabbit\n", ":2: stream.backend must be one of kafka, local"),
        ('spark:\n  master: ""\n', ":2: spark.master must not be empty"),
    ],
)
def test_cli_validate_names_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    bad = write(tmp_path, text)
    result = CliRunner().invoke(app, ["--config", str(bad), "config", "validate"])
    assert result.exit_code == 2
    (line,) = [line for line in result.output.splitlines() if line.strip()]
    assert f"{bad}{message}" in line


def test_overrides_beat_file_and_environment_and_are_checked(tmp_path: Path) -> None:
    path = write(tmp_path, "webhook:\n  port: 8100\n")
    env = {"ST_WEBHOOK__PORT": "8200"}
    loaded = load_config(path, env=env, overrides={"webhook.port": 8300})
    assert loaded.config.webhook.port == 8300
    assert loaded.sources["webhook.port"] == "override webhook.port"
    assert loaded.hash != load_config(path, env=env).hash
    with pytest.raises(ConfigError, match=r"override webhook\.host: webhook\.host must be a str"):
        load_config(path, env={}, overrides={"webhook.host": 1})
    with pytest.raises(ConfigError, match=r"webhook\.port must be between 1 and 65535, got 0"):
        load_config(path, env={}, overrides={"webhook.port": 0})


def test_webhook_serve_options_are_overrides_of_the_loaded_config(
    tmp_path: Path, monkeypatch
) -> None:
    from smarttrader_cli.stream import server

    served: list[Config] = []
    monkeypatch.setattr(server, "serve", lambda config, token, log_level: served.append(config))
    monkeypatch.setenv("ST_WEBHOOK__PORT", "8200")
    path = write(tmp_path, "webhook:\n  host: 127.0.0.2\n  port: 8100\n")
    args = ["--config", str(path), "webhook", "serve", "--insecure-no-auth"]
    result = CliRunner().invoke(app, [*args, "--port", "9100"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.2:9100/webhooks" in result.output
    assert (served[0].webhook.host, served[0].webhook.port) == ("127.0.0.2", 9100)
    result = CliRunner().invoke(app, [*args, "--host", "0.0.0.0"], catch_exceptions=False)
    assert (served[1].webhook.host, served[1].webhook.port) == ("0.0.0.0", 8200)


# --- secrets in lake.storage_options -------------------------------------------

SECRETS_YAML = (
    "lake:\n"
    "  root: s3://bucket/lake\n"
    "  storage_options:\n"
    "    AWS_ENDPOINT_URL: http://127.0.0.1:9000\n"
    "    AWS_REGION: eu-west-1\n"
    "    AWS_ACCESS_KEY_ID: AKIAFILEKEYID\n"
    "    AWS_SECRET_ACCESS_KEY: file-secret-value\n"
    "    AWS_SESSION_TOKEN: file-session-token\n"
)
SECRET_VALUES = ("AKIAFILEKEYID", "file-secret-value", "file-session-token", "env-account-key")


@pytest.mark.parametrize("fmt", ["json", "table", "csv"])
def test_cli_show_redacts_secrets_in_storage_options(tmp_path: Path, monkeypatch, fmt) -> None:
    path = write(tmp_path, SECRETS_YAML)
    monkeypatch.setenv("ST_LAKE__STORAGE_OPTIONS__AZURE_STORAGE_ACCOUNT_KEY", "env-account-key")
    result = CliRunner().invoke(
        app, ["--config", str(path), "config", "show", "--format", fmt], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    for secret in SECRET_VALUES:
        assert secret not in result.output
    assert "eu-west-1" in result.output and "http://127.0.0.1:9000" in result.output
    if fmt == "json":
        rows = {r["key"]: r for r in json.loads(result.stdout)}
        assert rows["lake.storage_options"]["value"] == {
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
            "AWS_REGION": "eu-west-1",
            "AWS_ACCESS_KEY_ID": "***redacted***",
            "AWS_SECRET_ACCESS_KEY": "***redacted***",
            "AWS_SESSION_TOKEN": "***redacted***",
            "AZURE_STORAGE_ACCOUNT_KEY": "***redacted***",
        }


def test_secret_looking_keys() -> None:
    from smarttrader_cli.config.redaction import is_secret_key

    for key in ("AWS_SECRET_ACCESS_KEY", "aws_access_key_id", "AWS_SESSION_TOKEN", "password",
                "AZURE_STORAGE_ACCOUNT_KEY", "google_service_account_key", "AZURE_CLIENT_SECRET",
                "AZURE_STORAGE_SAS_TOKEN", "bearer_token"):  # fmt: skip
        assert is_secret_key(key), key
    for key in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ALLOW_HTTP", "AWS_CONDITIONAL_PUT"):
        assert not is_secret_key(key), key


def test_errors_about_storage_options_do_not_echo_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, SECRETS_YAML + "    AWS_REGIONS: [a, b]\n")
    with pytest.raises(ConfigError, match=r"lake\.storage_options must be a mapping") as info:
        load_config(path, env={})
    assert "eu-west-1" in str(info.value)
    for secret in SECRET_VALUES[:3]:
        assert secret not in str(info.value)
    env = {"ST_LAKE__STORAGE_OPTIONS": '{"AWS_SECRET_ACCESS_KEY": "env-secret", "X": [1]}'}
    with pytest.raises(ConfigError, match="ST_LAKE__STORAGE_OPTIONS") as info:
        load_config(None, env=env, search=False)
    assert "env-secret" not in str(info.value)
    broken = {"ST_LAKE__STORAGE_OPTIONS": '{"AWS_SECRET_ACCESS_KEY": "env-secret"'}
    with pytest.raises(ConfigError, match="ST_LAKE__STORAGE_OPTIONS") as info:
        load_config(None, env=broken, search=False)
    assert "env-secret" not in str(info.value)


def test_secrets_in_the_file_warn_and_in_the_environment_do_not(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, SECRETS_YAML), env={})
    path = tmp_path / "st.yaml"
    assert loaded.warnings == [
        f"{path}:6: lake.storage_options.AWS_ACCESS_KEY_ID is a secret; set AWS_ACCESS_KEY_ID "
        "in the environment instead",
        f"{path}:7: lake.storage_options.AWS_SECRET_ACCESS_KEY is a secret; set "
        "AWS_SECRET_ACCESS_KEY in the environment instead",
        f"{path}:8: lake.storage_options.AWS_SESSION_TOKEN is a secret; set "
        "ST_LAKE__STORAGE_OPTIONS__AWS_SESSION_TOKEN in the environment instead",
    ]
    env = {"ST_LAKE__STORAGE_OPTIONS__AWS_SESSION_TOKEN": "t"}
    assert load_config(None, env=env, search=False).warnings == []
    result = CliRunner().invoke(app, ["--config", str(path), "config", "validate"])
    assert result.exit_code == 0
    assert "AWS_SESSION_TOKEN is a secret" in result.output
    for secret in SECRET_VALUES[:3]:
        assert secret not in result.output


def test_the_config_hash_does_not_depend_on_secret_values(tmp_path: Path) -> None:
    a = load_config(write(tmp_path, SECRETS_YAML), env={}).hash
    b = load_config(write(tmp_path, SECRETS_YAML.replace("file-secret", "other")), env={}).hash
    c = load_config(write(tmp_path, SECRETS_YAML.replace("eu-west-1", "us-east-2")), env={}).hash
    assert a == b != c
