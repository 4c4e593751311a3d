-- The PnL windows of each (wallet, token) (docs/pnl.md §8), as sql/duckdb/07_windows.sql,
-- from what the one FIFO pass left: 'all' from the per-group totals (as silver.wallet_pnl),
-- each finite window from the sums of the buckets it contains (bucket <= its own). The open
-- position is the token row's, valued at the latest price, the same in every window.
WITH windows AS (
{{windows_cte}}
),
opened AS (
    SELECT
        wallet_address AS wallet, token_address AS token, buy_count, total_bought,
        current_position_cost_basis AS open_cost,
        current_position_value AS open_value
    FROM {{token_rows}}
),
sold AS (
    SELECT
        s.wallet, s.token, w.window_name,
        CAST(sum(s.sell_count) AS BIGINT) AS sell_count,
        sum(s.total_sold) AS total_sold,
        sum(s.realized_pnl) AS realized_pnl,
        sum(s.matched_cost) AS matched_cost,
        sum(s.matched_proceeds) AS matched_proceeds,
        sum(s.sold_qty) AS sold_qty,
        sum(s.matched_qty) AS matched_qty,
        CAST(sum(s.counted_sells) AS BIGINT) AS counted_sells,
        CAST(sum(s.winning_sells) AS BIGINT) AS winning_sells
    FROM {{sell_totals}} s
    JOIN windows w ON s.bucket <= w.bucket
    GROUP BY s.wallet, s.token, w.window_name
    UNION ALL
    SELECT
        s.wallet, s.token, w.window_name, s.sell_count, s.total_sold, s.realized_pnl,
        s.matched_cost, s.matched_proceeds, s.sold_qty, s.matched_qty, s.counted_sells,
        s.winning_sells
    FROM {{sell_totals}} s
    JOIN windows w ON w.bucket IS NULL
    WHERE s.bucket IS NULL
),
bought AS (
    SELECT
        b.wallet, b.token, w.window_name,
        CAST(sum(b.buy_count) AS BIGINT) AS buy_count,
        sum(b.total_bought) AS total_bought
    FROM (
        SELECT wallet, token, bucket, count(*) AS buy_count, sum(value) AS total_bought
        FROM {{fifo_legs}}
        WHERE is_buy AND bucket < {{buckets}}
        GROUP BY wallet, token, bucket
    ) b
    JOIN windows w ON b.bucket <= w.bucket
    GROUP BY b.wallet, b.token, w.window_name
    UNION ALL
    SELECT o.wallet, o.token, w.window_name, o.buy_count, o.total_bought
    FROM opened o
    JOIN windows w ON w.bucket IS NULL
),
window_totals AS (
    SELECT
        o.wallet, o.token, w.window_name, w.start_t, w.end_t,
        coalesce(b.buy_count, 0) AS buy_count,
        coalesce(s.sell_count, 0) AS sell_count,
        coalesce(b.total_bought, 0.0D) AS total_bought,
        coalesce(s.total_sold, 0.0D) AS total_sold,
        coalesce(s.realized_pnl, 0.0D) AS realized_pnl,
        coalesce(s.matched_cost, 0.0D) AS matched_cost,
        coalesce(s.matched_proceeds, 0.0D) AS matched_proceeds,
        coalesce(s.sold_qty, 0.0D) AS sold_qty,
        coalesce(s.matched_qty, 0.0D) AS matched_qty,
        coalesce(s.counted_sells, 0) AS counted_sells,
        coalesce(s.winning_sells, 0) AS winning_sells,
        -- all: everything bought (= matched + open cost, without their rounding)
        CASE WHEN w.bucket IS NULL THEN o.total_bought
             ELSE coalesce(s.matched_cost, 0.0D) + o.open_cost END AS capital,
        o.total_bought AS all_bought,
        o.open_cost, o.open_value
    FROM opened o
    CROSS JOIN windows w
    LEFT JOIN sold s
        ON s.wallet = o.wallet AND s.token = o.token AND s.window_name = w.window_name
    LEFT JOIN bought b
        ON b.wallet = o.wallet AND b.token = o.token AND b.window_name = w.window_name
)
{{include:window_rows.sql}}
