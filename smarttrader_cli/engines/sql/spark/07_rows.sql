-- Token rows plus one ALL_TOKENS row per wallet (§4), as in sql/duckdb/05_rows.sql.
WITH wallets AS (
    SELECT DISTINCT wallet AS wallet_address FROM {{trades}}
),
portfolio AS (
    SELECT
        w.wallet_address,
        coalesce(sum(r.realized_pnl), 0.0D) AS realized_pnl,
        coalesce(sum(r.unrealized_pnl), 0.0D) AS unrealized_pnl,
        coalesce(sum(r.total_pnl), 0.0D) AS total_pnl,
        coalesce(sum(r.trade_count), 0) AS trade_count,
        coalesce(sum(r.buy_count), 0) AS buy_count,
        coalesce(sum(r.sell_count), 0) AS sell_count,
        coalesce(sum(r.winning_sells), 0) AS winning_sells,
        coalesce(sum(r.counted_sells), 0) AS counted_sells,
        coalesce(sum(r.total_bought), 0.0D) AS total_bought,
        coalesce(sum(r.total_sold), 0.0D) AS total_sold,
        coalesce(sum(r.matched_cost), 0.0D) AS matched_cost,
        coalesce(sum(r.current_position_cost_basis), 0.0D) AS current_position_cost_basis,
        coalesce(sum(r.current_position_value), 0.0D) AS current_position_value,
        sum(r.avg_holding_time_hours * r.matched_cost)
            FILTER (WHERE r.avg_holding_time_hours IS NOT NULL) AS held_weighted,
        sum(r.matched_cost) FILTER (WHERE r.avg_holding_time_hours IS NOT NULL) AS held_weight,
        min(r.first_t) AS first_t,
        max(r.last_t) AS last_t,
        coalesce(sum(r.unpriced_leg_count), 0) AS unpriced_leg_count
    FROM wallets w
    LEFT JOIN {{token_rows}} r ON r.wallet_address = w.wallet_address
    GROUP BY w.wallet_address
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
SELECT
    wallet_address,
    'ALL_TOKENS' AS token_address,
    realized_pnl,
    unrealized_pnl,
    total_pnl,
    trade_count,
    buy_count,
    sell_count,
    winning_sells,
    CASE WHEN counted_sells > 0 THEN winning_sells / counted_sells END AS win_rate,
    total_bought,
    total_sold,
    matched_cost,
    CASE WHEN total_bought > 0 THEN total_pnl / total_bought END AS roi,
    CAST(NULL AS DOUBLE) AS current_position_tokens,
    current_position_cost_basis,
    current_position_value,
    CASE WHEN held_weight > 0 THEN held_weighted / held_weight END AS avg_holding_time_hours,
    CASE WHEN trade_count = 0 THEN 0.0D
        ELSE trade_count / greatest(1.0D, (last_t - first_t) / 86400.0D) END
        AS trade_frequency_daily,
    timestamp_seconds(first_t) AS first_trade_at,
    timestamp_seconds(last_t) AS last_trade_at,
    CAST(NULL AS DOUBLE) AS unmatched_sell_qty,
    unpriced_leg_count
FROM portfolio
