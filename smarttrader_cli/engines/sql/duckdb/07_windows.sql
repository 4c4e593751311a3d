-- The PnL windows (docs/pnl.md §8) from what the one FIFO pass left: per group totals for
-- 'all' (st_sell_totals, as silver.wallet_pnl), and for each finite window the sums of the
-- buckets it contains (st_sell_buckets, st_buy_buckets: bucket <= the window's). The open
-- position is st_token_rows' (valued at the latest price, the same in every window).
CREATE OR REPLACE TEMP TABLE st_window_token_rows AS
WITH windows AS (
{{windows_cte}}
),
opened AS (
    SELECT
        r.g, r.wallet, r.token, r.buy_count, r.sell_count, r.total_bought,
        t.current_position_cost_basis AS open_cost,
        t.current_position_value AS open_value
    FROM st_groups r
    JOIN st_token_rows t ON t.wallet_address = r.wallet AND t.token_address = r.token
),
sold AS (
    SELECT
        s.g, w.window_name,
        CAST(sum(s.sell_count) AS BIGINT) AS sell_count,
        sum(s.total_sold) AS total_sold,
        sum(s.realized_pnl) AS realized_pnl,
        sum(s.matched_cost) AS matched_cost,
        sum(s.matched_proceeds) AS matched_proceeds,
        sum(s.sold_qty) AS sold_qty,
        sum(s.matched_qty) AS matched_qty,
        CAST(sum(s.counted_sells) AS BIGINT) AS counted_sells,
        CAST(sum(s.winning_sells) AS BIGINT) AS winning_sells
    FROM st_sell_buckets s
    JOIN windows w ON s.bucket <= w.bucket
    GROUP BY s.g, w.window_name
    UNION ALL BY NAME
    SELECT s.* EXCLUDE (held_seconds, unmatched_sell_qty, m_last), w.window_name
    FROM st_sell_totals s
    JOIN windows w ON w.bucket IS NULL
),
bought AS (
    SELECT
        b.g, w.window_name,
        CAST(sum(b.buy_count) AS BIGINT) AS buy_count,
        sum(b.total_bought) AS total_bought
    FROM st_buy_buckets b
    JOIN windows w ON b.bucket <= w.bucket
    GROUP BY b.g, w.window_name
    UNION ALL
    SELECT r.g, w.window_name, r.buy_count, r.total_bought
    FROM st_groups r
    JOIN windows w ON w.bucket IS NULL
),
window_totals AS (
    SELECT
        o.wallet, o.token, w.window_name, w.start_t, w.end_t,
        coalesce(b.buy_count, 0) AS buy_count,
        coalesce(s.sell_count, 0) AS sell_count,
        coalesce(b.total_bought, 0.0) AS total_bought,
        coalesce(s.total_sold, 0.0) AS total_sold,
        coalesce(s.realized_pnl, 0.0) AS realized_pnl,
        coalesce(s.matched_cost, 0.0) AS matched_cost,
        coalesce(s.matched_proceeds, 0.0) AS matched_proceeds,
        coalesce(s.sold_qty, 0.0) AS sold_qty,
        coalesce(s.matched_qty, 0.0) AS matched_qty,
        coalesce(s.counted_sells, 0) AS counted_sells,
        coalesce(s.winning_sells, 0) AS winning_sells,
        -- all: everything bought (= matched + open cost, without their rounding)
        CASE WHEN w.bucket IS NULL THEN o.total_bought
             ELSE coalesce(s.matched_cost, 0.0) + o.open_cost END AS capital,
        o.total_bought AS all_bought,
        o.open_cost, o.open_value
    FROM opened o
    CROSS JOIN windows w
    LEFT JOIN sold s ON s.g = o.g AND s.window_name = w.window_name
    LEFT JOIN bought b ON b.g = o.g AND b.window_name = w.window_name
)
{{include:window_rows.sql}};

CREATE OR REPLACE TEMP TABLE st_window_rows AS
WITH windows AS (
{{windows_cte}}
),
wallets AS (
    SELECT wallet AS wallet_address FROM st_wallets
)
SELECT * FROM st_window_token_rows
UNION ALL BY NAME
{{include:window_portfolio_rows.sql}};
