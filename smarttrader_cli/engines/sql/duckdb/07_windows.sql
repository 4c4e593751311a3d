-- The PnL windows (docs/pnl.md §8) from what the one FIFO pass left: per group totals for
-- 'all' (st_sell_totals, as silver.wallet_pnl; the buys of st_groups) and for each finite
-- window its sums of the buckets it contains (st_sell_totals' and st_buy_windows' columns
-- <name>_w<bucket>), picked per window row: one join per group, none per window. The open
-- position is st_token_rows' (valued at the latest price, the same in every window).
-- Views, not tables: the rows are streamed once (2.5M at 10M trades); the ALL_TOKENS sums
-- below read the token rows again, which costs less than storing them.
CREATE OR REPLACE TEMP VIEW st_window_token_rows AS
WITH windows AS (
{{windows_cte}}
),
opened AS (
    SELECT
        r.wallet, r.token, r.buy_count, r.total_bought,
        t.current_position_cost_basis AS open_cost,
        t.current_position_value AS open_value,
        s.* EXCLUDE (g), b.* EXCLUDE (g)
    FROM st_groups r
    JOIN st_token_rows t ON t.wallet_address = r.wallet AND t.token_address = r.token
    LEFT JOIN st_sell_totals s ON s.g = r.g
    LEFT JOIN st_buy_windows b ON b.g = r.g
),
window_totals AS (
    SELECT
        o.wallet, o.token, w.window_name, w.start_t, w.end_t,
        coalesce({{window_pick:buy_count}}, 0) AS buy_count,
        coalesce({{window_pick:sell_count}}, 0) AS sell_count,
        coalesce({{window_pick:total_bought}}, 0.0) AS total_bought,
        coalesce({{window_pick:total_sold}}, 0.0) AS total_sold,
        coalesce({{window_pick:realized_pnl}}, 0.0) AS realized_pnl,
        coalesce({{window_pick:matched_cost}}, 0.0) AS matched_cost,
        coalesce({{window_pick:matched_proceeds}}, 0.0) AS matched_proceeds,
        coalesce({{window_pick:sold_qty}}, 0.0) AS sold_qty,
        coalesce({{window_pick:matched_qty}}, 0.0) AS matched_qty,
        coalesce({{window_pick:counted_sells}}, 0) AS counted_sells,
        coalesce({{window_pick:winning_sells}}, 0) AS winning_sells,
        -- all: everything bought (= matched + open cost, without their rounding)
        CASE WHEN w.bucket IS NULL THEN o.total_bought
             ELSE coalesce({{window_pick:matched_cost}}, 0.0) + o.open_cost END AS capital,
        o.total_bought AS all_bought,
        o.open_cost, o.open_value
    FROM opened o
    CROSS JOIN windows w
)
{{include:window_rows.sql}};

CREATE OR REPLACE TEMP VIEW st_window_rows AS
WITH windows AS (
{{windows_cte}}
),
wallets AS (
    SELECT wallet AS wallet_address FROM st_wallets
)
SELECT * FROM st_window_token_rows
UNION ALL BY NAME
{{include:window_portfolio_rows.sql}};
