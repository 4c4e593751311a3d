-- Token rows plus one ALL_TOKENS row per wallet (§4); the portfolio row is shared with
-- DuckDB (sql/shared/portfolio_rows.sql). UNION ALL matches columns by position here.
WITH wallets AS (
    SELECT DISTINCT wallet AS wallet_address FROM {{trades}}
)
SELECT
    wallet_address, token_address, realized_pnl, unrealized_pnl, total_pnl, trade_count,
    buy_count, sell_count, winning_sells, win_rate, total_bought, total_sold, matched_cost, roi,
    current_position_tokens, current_position_cost_basis, current_position_value,
    avg_holding_time_hours, trade_frequency_daily,
    timestamp_seconds(first_t) AS first_trade_at,
    timestamp_seconds(last_t) AS last_trade_at,
    unmatched_sell_qty, unpriced_leg_count
FROM {{token_rows}}
UNION ALL
{{include:portfolio_rows.sql}}
