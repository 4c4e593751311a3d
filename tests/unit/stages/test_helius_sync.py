"""helius.sync planning and applying against a MockTransport Helius and a tmp lake."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import httpx
import pyarrow as pa
import pytest

from smarttrader_cli.context import AppContext
from smarttrader_cli.errors import ApiError, ConfigError, StageError
from smarttrader_cli.lake.store import CommitMeta
from smarttrader_cli.lake.tables import RUNS, SMART_WALLETS
from smarttrader_cli.stages import helius_sync
from smarttrader_cli.stages.contract import StageContext

HOOK_URL = "https://st.example/webhooks"


class FakeHelius:
    """Webhooks in memory, like the Helius API; records every call."""

    def __init__(self, hooks: list[dict[str, Any]] | None = None, fail: int | None = None):
        self.hooks = {h["webhookID"]: h for h in hooks or []}
        self.calls: list[tuple[str, str]] = []
        self.fail = fail

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((request.method, request.url.path))
        assert request.url.params["api-key"] == "HKEY"
        if self.fail and request.method != "GET":
            return httpx.Response(self.fail, json={"error": "insufficient credits"})
        if request.method == "GET":
            return httpx.Response(200, json=list(self.hooks.values()))
        body = json.loads(request.content)
        if request.method == "POST":
            hook = {**body, "webhookID": f"w{len(self.hooks) + 1}"}
            self.hooks[hook["webhookID"]] = hook
            return httpx.Response(200, json=hook)
        hook_id = request.url.path.rsplit("/", 1)[1]
        self.hooks[hook_id] = {**body, "webhookID": hook_id}
        return httpx.Response(200, json=self.hooks[hook_id])

    @property
    def edits(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] != "GET"]


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"helius.webhook_url": HOOK_URL, "helius.max_addresses": 3}


@pytest.fixture(autouse=True)
def secrets(app_ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """The secrets sync needs, set after app_ctx dropped the caller's ST_* variables."""
    monkeypatch.setenv("HELIUS_API_KEY", "HKEY")
    monkeypatch.setenv("ST_WEBHOOK_AUTH_TOKEN", "secret-token")


def rank_wallets(ctx: AppContext, wallets: list[str]) -> None:
    rows = [
        {"wallet_address": w, "rank": i + 1, "tier": "strong", "score": 0.5}
        for i, w in enumerate(wallets)
    ]
    ctx.lake.overwrite(
        SMART_WALLETS,
        pa.Table.from_pylist(rows, SMART_WALLETS.schema),
        CommitMeta("r", "gold.rank", "h"),
    )


def existing(addresses: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "webhookID": "w1",
        "webhookURL": HOOK_URL,
        "transactionTypes": ["SWAP", "TRANSFER", "UNKNOWN"],
        "accountAddresses": addresses,
        "webhookType": "enhanced",
        "authHeader": "secret-token",
        "txnStatus": "all",
        **extra,
    }


def sync(
    app: AppContext, *, dry_run: bool = False, transport: httpx.BaseTransport | None = None
) -> SimpleNamespace:
    """The stage (or its dry run), its details and address changes as attributes."""
    ctx = StageContext.of(app.loaded, app.lake)
    if dry_run:
        result = helius_sync.preview(ctx, transport)
    else:
        result = helius_sync.run(ctx, transport=transport)
    changes = {
        change: [r["wallet_address"] for r in result.records if r["change"] == change]
        for change in ("added", "removed")
    }
    return SimpleNamespace(**{**result.details, **changes})


def test_creates_the_webhook_with_the_top_wallets(app_ctx: AppContext) -> None:
    rank_wallets(app_ctx, ["A", "B", "C", "D"])
    fake = FakeHelius([{**existing(["Z"]), "webhookURL": "https://other", "webhookID": "w0"}])
    result = sync(app_ctx, transport=httpx.MockTransport(fake))
    assert result.action == "create" and result.applied
    assert fake.edits == [("POST", "/v0/webhooks")]
    hook = fake.hooks[result.webhook_id or ""]
    assert hook["accountAddresses"] == ["A", "B", "C"]  # top max_addresses by rank
    assert hook["authHeader"] == "secret-token" and hook["txnStatus"] == "all"
    # real swaps also arrive labelled TRANSFER or UNKNOWN: the default delivers them too
    assert (hook["webhookType"], hook["transactionTypes"]) == (
        "enhanced",
        ["SWAP", "TRANSFER", "UNKNOWN"],
    )
    assert fake.hooks["w0"]["accountAddresses"] == ["Z"]  # another URL's webhook untouched


def test_replaces_addresses_only_when_the_set_changed(app_ctx: AppContext) -> None:
    rank_wallets(app_ctx, ["A", "B", "C"])
    fake = FakeHelius(
        [existing(["C", "B", "A"], transactionTypes=["UNKNOWN", "SWAP", "TRANSFER"])]
    )  # same set, other order
    result = sync(app_ctx, transport=httpx.MockTransport(fake))
    assert result.action == "none" and not result.applied and fake.edits == []

    rank_wallets(app_ctx, ["A", "D", "B", "C"])
    result = sync(app_ctx, transport=httpx.MockTransport(fake))
    assert (result.action, result.added, result.removed) == ("update", ["D"], ["C"])
    assert fake.edits == [("PUT", "/v0/webhooks/w1")]
    assert fake.hooks["w1"]["accountAddresses"] == ["A", "D", "B"]


def test_config_drift_is_repaired_even_with_the_same_addresses(app_ctx: AppContext) -> None:
    rank_wallets(app_ctx, ["A"])
    fake = FakeHelius([existing(["A"], transactionTypes=["TRANSFER"])])
    result = sync(app_ctx, transport=httpx.MockTransport(fake))
    assert result.action == "update" and "transactionTypes" in result.reason
    assert fake.hooks["w1"]["transactionTypes"] == ["SWAP", "TRANSFER", "UNKNOWN"]


def test_dry_run_reads_only_and_records_no_run(app_ctx: AppContext) -> None:
    rank_wallets(app_ctx, ["A", "B"])
    fake = FakeHelius([existing(["B", "X"])])
    runs_before = app_ctx.lake.read(RUNS).num_rows
    result = sync(app_ctx, dry_run=True, transport=httpx.MockTransport(fake))
    assert (result.action, result.added, result.removed) == ("update", ["A"], ["X"])
    assert not result.applied and fake.edits == []
    assert fake.hooks["w1"]["accountAddresses"] == ["B", "X"]
    assert app_ctx.lake.read(RUNS).num_rows == runs_before


def test_empty_ranking_leaves_the_webhook_alone(app_ctx: AppContext) -> None:
    rank_wallets(app_ctx, [])
    fake = FakeHelius([existing(["A"])])
    result = sync(app_ctx, transport=httpx.MockTransport(fake))
    assert result.action == "none" and "empty" in result.reason and fake.edits == []


def test_helius_error_names_the_status_and_changes_nothing(app_ctx: AppContext) -> None:
    rank_wallets(app_ctx, ["A", "B"])
    fake = FakeHelius([existing(["A"])], fail=402)
    with pytest.raises(ApiError, match=r"PUT /v0/webhooks/w1 answered HTTP 402: insufficient"):
        sync(app_ctx, transport=httpx.MockTransport(fake))
    assert fake.hooks["w1"]["accountAddresses"] == ["A"]
    runs = app_ctx.lake.read(RUNS).to_pylist()
    assert runs[-1]["stage"] == "helius.sync" and runs[-1]["status"] == "failed"


def test_missing_settings_are_config_errors(
    app_ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    rank_wallets(app_ctx, ["A"])
    monkeypatch.delenv("ST_WEBHOOK_AUTH_TOKEN")
    with pytest.raises(ConfigError, match="ST_WEBHOOK_AUTH_TOKEN is not set"):
        sync(AppContext(config_path=app_ctx.config_path))
    monkeypatch.delenv("HELIUS_API_KEY")
    with pytest.raises(ConfigError, match="HELIUS_API_KEY is not set"):
        sync(AppContext(config_path=app_ctx.config_path))
    monkeypatch.setenv("ST_HELIUS__WEBHOOK_URL", "")
    with pytest.raises(ConfigError, match=r"helius\.webhook_url is empty"):
        sync(AppContext(config_path=app_ctx.config_path))


def test_unranked_lake_is_a_stage_error(app_ctx: AppContext) -> None:
    with pytest.raises(StageError, match="run `st gold rank` first"):
        sync(app_ctx, dry_run=True, transport=httpx.MockTransport(FakeHelius()))
