-- Shared by both engines: one ALL_TOKENS row per wallet of the `wallets` CTE, summed over
-- its token rows in {{token_rows}} (§4). Float literals: see token_rows.sql. The columns are
-- in the order of the token rows' output, which Spark's positional UNION ALL needs.
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
    CASE WHEN trade_count = 0 THEN 0E0
        ELSE trade_count / greatest(1E0, (last_t - first_t) / 86400E0) END
        AS trade_frequency_daily,
    {{seconds_to_timestamp}}(first_t) AS first_trade_at,
    {{seconds_to_timestamp}}(last_t) AS last_trade_at,
    CAST(NULL AS DOUBLE) AS unmatched_sell_qty,
    unpriced_leg_count
FROM (
    SELECT
        w.wallet_address,
        coalesce(sum(r.realized_pnl), 0E0) AS realized_pnl,
        coalesce(sum(r.unrealized_pnl), 0E0) AS unrealized_pnl,
        coalesce(sum(r.total_pnl), 0E0) AS total_pnl,
        CAST(coalesce(sum(r.trade_count), 0) AS BIGINT) AS trade_count,
        CAST(coalesce(sum(r.buy_count), 0) AS BIGINT) AS buy_count,
        CAST(coalesce(sum(r.sell_count), 0) AS BIGINT) AS sell_count,
        CAST(coalesce(sum(r.winning_sells), 0) AS BIGINT) AS winning_sells,
        CAST(coalesce(sum(r.counted_sells), 0) AS BIGINT) AS counted_sells,
        coalesce(sum(r.total_bought), 0E0) AS total_bought,
        coalesce(sum(r.total_sold), 0E0) AS total_sold,
        coalesce(sum(r.matched_cost), 0E0) AS matched_cost,
        coalesce(sum(r.current_position_cost_basis), 0E0) AS current_position_cost_basis,
        coalesce(sum(r.current_position_value), 0E0) AS current_position_value,
        sum(r.avg_holding_time_hours * r.matched_cost)
            FILTER (WHERE r.avg_holding_time_hours IS NOT NULL) AS held_weighted,
        sum(r.matched_cost) FILTER (WHERE r.avg_holding_time_hours IS NOT NULL) AS held_weight,
        min(r.first_t) AS first_t,
        max(r.last_t) AS last_t,
        CAST(coalesce(sum(r.unpriced_leg_count), 0) AS BIGINT) AS unpriced_leg_count
    FROM wallets w
    LEFT JOIN {{token_rows}} r ON r.wallet_address = w.wallet_address
    GROUP BY w.wallet_address
) portfolio
