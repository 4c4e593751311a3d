"""The alerts' config keys are validated, and the channels' secrets never printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app
from smarttrader_cli.config import load_config
from smarttrader_cli.errors import ConfigError

SECRETS = {
    "ST_TELEGRAM_BOT_TOKEN": "777:telegram-token-value",
    "ST_DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/1/discord-token-value",
    "ST_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/slack-token-value",
    "ST_ALERT_WEBHOOK_SECRET": "hmac-key-value",
}


def test_unknown_channels_and_tiers_are_config_errors(tmp_path: Path) -> None:
    config = tmp_path / "st.yaml"
    config.write_text("alerts:\n  channels: [telegram, pager]\n")
    with pytest.raises(ConfigError, match=r"alerts\.channels may only name"):
        load_config(config, env={})
    config.write_text("alerts:\n  rules:\n    wallet_buy:\n      tiers: [elite, whale]\n")
    with pytest.raises(ConfigError, match=r"wallet_buy\.tiers may only name"):
        load_config(config, env={})
    with pytest.raises(ConfigError, match=r"alerts\.max_attempts"):
        load_config(None, env={"ST_ALERTS__MAX_ATTEMPTS": "0"}, search=False)


def test_the_channel_secrets_come_from_the_environment_and_show_redacted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    for var, value in SECRETS.items():
        monkeypatch.setenv(var, value)
    loaded = load_config(None, search=False)
    assert loaded.secrets.telegram_bot_token == SECRETS["ST_TELEGRAM_BOT_TOKEN"]
    assert loaded.secrets.alert_webhook_secret == SECRETS["ST_ALERT_WEBHOOK_SECRET"]
    assert "***redacted***" in loaded.redact(f"GET {SECRETS['ST_SLACK_WEBHOOK_URL']} failed")

    shown = CliRunner().invoke(app, ["config", "show", "--format", "json"], catch_exceptions=False)
    assert shown.exit_code == 0
    rows = {r["key"]: r for r in json.loads(shown.stdout)}
    for name in ("telegram_bot_token", "discord_webhook_url", "slack_webhook_url"):
        assert rows[f"secrets.{name}"]["value"] == "***redacted***"
    assert rows["secrets.alert_webhook_secret"]["source"] == "env ST_ALERT_WEBHOOK_SECRET"
    assert not any(value in shown.stdout for value in SECRETS.values())
