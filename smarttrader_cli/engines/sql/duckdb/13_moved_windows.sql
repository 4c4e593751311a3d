-- The window rows of the wallets in st_affected (not recomputed, and a leg left one of
-- their windows or a price under their open positions moved) from their stored rows
-- (docs/pnl.md §7): token rows into st_moved_token_windows, ALL_TOKENS rows into
-- st_moved_portfolio;
-- the legs that left a window (st_band_sums) are subtracted from its sums (a window left
-- without buys or sells gets exact zeros, as a full refresh would), open positions of
-- re-priced tokens are re-valued (st_repriced_pnl). The metrics are window_rows.sql's and
-- window_portfolio_rows.sql's, from these totals (stored numbers no leg or price moved come
-- out as they went in).
CREATE OR REPLACE TEMP TABLE st_moved_token_windows AS
WITH windows AS (
{{windows_cte}}
),
opened AS (
    SELECT
        p.wallet_address,
        p.token_address,
        p.total_bought AS all_bought,
        p.current_position_cost_basis AS open_cost,
        coalesce(v.current_position_value, p.current_position_value) AS open_value
    FROM st_stored_pnl p
    LEFT JOIN st_repriced_pnl v
        ON v.wallet_address = p.wallet_address AND v.token_address = p.token_address
    WHERE p.token_address <> 'ALL_TOKENS'
      AND p.wallet_address IN (SELECT wallet_address FROM st_affected)
),
moved AS (
    SELECT
        s.wallet_address AS wallet,
        s.token_address AS token,
        w.window_name, w.bucket, w.start_t, w.end_t,
        s.buy_count - coalesce(b.buy_count, 0) AS buy_count,
        s.sell_count - coalesce(b.sell_count, 0) AS sell_count,
        s.total_bought - coalesce(b.total_bought, 0E0) AS total_bought,
        s.total_sold - coalesce(b.total_sold, 0E0) AS total_sold,
        s.realized_pnl - coalesce(b.realized_pnl, 0E0) AS realized_pnl,
        s.matched_cost - coalesce(b.matched_cost, 0E0) AS matched_cost,
        s.matched_proceeds - coalesce(b.matched_proceeds, 0E0) AS matched_proceeds,
        s.sold_qty - coalesce(b.sold_qty, 0E0) AS sold_qty,
        s.matched_qty - coalesce(b.matched_qty, 0E0) AS matched_qty,
        s.counted_sells - coalesce(b.counted_sells, 0) AS counted_sells,
        s.winning_sells - coalesce(b.winning_sells, 0) AS winning_sells,
        o.all_bought, o.open_cost, o.open_value
    FROM silver.wallet_pnl_windows s
    JOIN opened o ON o.wallet_address = s.wallet_address AND o.token_address = s.token_address
    JOIN windows w ON w.window_name = s."window"
    LEFT JOIN st_band_sums b
        ON b.wallet_address = s.wallet_address AND b.token_address = s.token_address
       AND b.window_name = s."window"
),
zeroed AS (
    SELECT
        * REPLACE (
            CASE WHEN buy_count = 0 THEN 0E0 ELSE total_bought END AS total_bought,
            CASE WHEN sell_count = 0 THEN 0E0 ELSE total_sold END AS total_sold,
            CASE WHEN sell_count = 0 THEN 0E0 ELSE realized_pnl END AS realized_pnl,
            CASE WHEN sell_count = 0 THEN 0E0 ELSE matched_cost END AS matched_cost,
            CASE WHEN sell_count = 0 THEN 0E0 ELSE matched_proceeds END AS matched_proceeds,
            CASE WHEN sell_count = 0 THEN 0E0 ELSE sold_qty END AS sold_qty,
            CASE WHEN sell_count = 0 THEN 0E0 ELSE matched_qty END AS matched_qty
        )
    FROM moved
),
window_totals AS (
    SELECT
        *,
        CASE WHEN bucket IS NULL THEN all_bought ELSE matched_cost + open_cost END AS capital
    FROM zeroed
)
{{include:window_rows.sql}};

CREATE OR REPLACE TEMP TABLE st_moved_portfolio AS
WITH windows AS (
{{windows_cte}}
),
wallets AS (
    SELECT wallet_address FROM st_affected
)
{{include:window_portfolio_rows.sql}};
