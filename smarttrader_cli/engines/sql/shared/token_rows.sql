-- Shared by both engines: the metrics of each (wallet, token) row from its totals in
-- the `joined` CTE (§3). Float literals are written 0E0: a DOUBLE in DuckDB and Spark alike
-- (0.0 is a DECIMAL in both).
SELECT
    wallet AS wallet_address,
    token AS token_address,
    realized_pnl,
    open_value - open_cost AS unrealized_pnl,
    realized_pnl + open_value - open_cost AS total_pnl,
    buy_count + sell_count AS trade_count,
    buy_count,
    sell_count,
    winning_sells,
    CASE WHEN counted_sells > 0 THEN winning_sells / counted_sells END AS win_rate,
    total_bought,
    total_sold,
    matched_cost,
    CASE WHEN total_bought > 0 THEN (realized_pnl + open_value - open_cost) / total_bought END
        AS roi,
    open_qty AS current_position_tokens,
    open_cost AS current_position_cost_basis,
    open_value AS current_position_value,
    CASE WHEN matched_qty > 0 THEN held_seconds / matched_qty / 3600E0 END
        AS avg_holding_time_hours,
    CASE WHEN buy_count + sell_count = 0 THEN 0E0
        ELSE (buy_count + sell_count) / greatest(1E0, (last_t - first_t) / 86400E0) END
        AS trade_frequency_daily,
    first_t,
    last_t,
    unmatched_sell_qty,
    unpriced AS unpriced_leg_count,
    counted_sells
FROM (
    SELECT
        *,
        total_bought - matched_cost AS open_cost,
        CASE WHEN open_qty = 0 THEN 0E0 ELSE coalesce(open_qty * price, 0E0) END AS open_value
    FROM joined
) valued
