-- One row per (wallet, token) with any leg (st_groups), then one ALL_TOKENS row per wallet
-- (§3-4).
CREATE OR REPLACE TEMP TABLE st_token_rows AS
WITH joined AS (
    SELECT
        r.wallet, r.token, r.unpriced, r.buy_count, r.sell_count, r.total_bought,
        coalesce(s.total_sold, 0.0) AS total_sold,
        coalesce(s.realized_pnl, 0.0) AS realized_pnl,
        coalesce(s.matched_cost, 0.0) AS matched_cost,
        coalesce(s.matched_qty, 0.0) AS matched_qty,
        s.held_seconds,
        coalesce(s.unmatched_sell_qty, 0.0) AS unmatched_sell_qty,
        coalesce(s.counted_sells, 0) AS counted_sells,
        coalesce(s.winning_sells, 0) AS winning_sells,
        r.bought_qty - greatest(coalesce(s.m_last, 0.0), 0.0) AS open_qty,
        r.first_t, r.last_t,
        p.price
    FROM st_groups r
    LEFT JOIN st_sell_totals s ON r.g = s.g
    LEFT JOIN st_prices p ON r.token = p.token
),
valued AS (
    SELECT
        *,
        total_bought - matched_cost AS open_cost,
        CASE WHEN open_qty = 0 THEN 0.0 ELSE coalesce(open_qty * price, 0.0) END AS open_value
    FROM joined
)
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
    CASE WHEN matched_qty > 0 THEN held_seconds / matched_qty / 3600.0 END
        AS avg_holding_time_hours,
    CASE WHEN buy_count + sell_count = 0 THEN 0.0
        ELSE (buy_count + sell_count) / greatest(1.0, (last_t - first_t) / 86400.0) END
        AS trade_frequency_daily,
    first_t,
    last_t,
    unmatched_sell_qty,
    unpriced AS unpriced_leg_count,
    counted_sells
FROM valued;

CREATE OR REPLACE TEMP TABLE st_pnl_rows AS
WITH wallets AS (
    SELECT wallet AS wallet_address FROM st_wallets
),
portfolio AS (
    SELECT
        w.wallet_address,
        coalesce(sum(r.realized_pnl), 0.0) AS realized_pnl,
        coalesce(sum(r.unrealized_pnl), 0.0) AS unrealized_pnl,
        coalesce(sum(r.total_pnl), 0.0) AS total_pnl,
        coalesce(sum(r.trade_count), 0)::BIGINT AS trade_count,
        coalesce(sum(r.buy_count), 0)::BIGINT AS buy_count,
        coalesce(sum(r.sell_count), 0)::BIGINT AS sell_count,
        coalesce(sum(r.winning_sells), 0)::BIGINT AS winning_sells,
        coalesce(sum(r.counted_sells), 0)::BIGINT AS counted_sells,
        coalesce(sum(r.total_bought), 0.0) AS total_bought,
        coalesce(sum(r.total_sold), 0.0) AS total_sold,
        coalesce(sum(r.matched_cost), 0.0) AS matched_cost,
        coalesce(sum(r.current_position_cost_basis), 0.0) AS current_position_cost_basis,
        coalesce(sum(r.current_position_value), 0.0) AS current_position_value,
        sum(r.avg_holding_time_hours * r.matched_cost)
            FILTER (WHERE r.avg_holding_time_hours IS NOT NULL) AS held_weighted,
        sum(r.matched_cost) FILTER (WHERE r.avg_holding_time_hours IS NOT NULL) AS held_weight,
        min(r.first_t) AS first_t,
        max(r.last_t) AS last_t,
        coalesce(sum(r.unpriced_leg_count), 0)::BIGINT AS unpriced_leg_count
    FROM wallets w
    LEFT JOIN st_token_rows r ON r.wallet_address = w.wallet_address
    GROUP BY w.wallet_address
)
SELECT * EXCLUDE (counted_sells, first_t, last_t),
       to_timestamp(first_t) AS first_trade_at,
       to_timestamp(last_t) AS last_trade_at
FROM st_token_rows
UNION ALL BY NAME
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
    CASE WHEN trade_count = 0 THEN 0.0
        ELSE trade_count / greatest(1.0, (last_t - first_t) / 86400.0) END
        AS trade_frequency_daily,
    CAST(NULL AS DOUBLE) AS unmatched_sell_qty,
    unpriced_leg_count,
    to_timestamp(first_t) AS first_trade_at,
    to_timestamp(last_t) AS last_trade_at
FROM portfolio;
