-- One row per (wallet, token) with any leg (st_groups), then one ALL_TOKENS row per wallet
-- (§3-4). The metrics are shared with Spark (sql/shared/); only the joins differ, as the
-- engines' FIFO steps leave their totals in different tables.
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
)
{{include:token_rows.sql}};

-- DuckDB unions by name (Spark by position: sql/spark/07_rows.sql lists the columns).
CREATE OR REPLACE TEMP TABLE st_pnl_rows AS
WITH wallets AS (
    SELECT wallet AS wallet_address FROM st_wallets
)
SELECT * EXCLUDE (counted_sells, first_t, last_t),
       to_timestamp(first_t) AS first_trade_at,
       to_timestamp(last_t) AS last_trade_at
FROM st_token_rows
UNION ALL BY NAME
{{include:portfolio_rows.sql}};
