-- Shared by both engines: one ALL_TOKENS row per wallet of the `wallets` CTE and window of
-- the `windows` CTE, summed over its token window rows in {{window_token_rows}}. Token
-- quantities do not add up, so sold_qty and matched_qty are null and basis_coverage is
-- weighted by USD (matched proceeds over sold value). Same column order as window_rows.sql.
SELECT
    wallet_address,
    'ALL_TOKENS' AS token_address,
    window_name,
    {{seconds_to_timestamp}}(start_t) AS window_start,
    {{seconds_to_timestamp}}(end_t) AS window_end,
    realized_pnl,
    unrealized_pnl,
    total_pnl,
    trade_count,
    buy_count,
    sell_count,
    winning_sells,
    CASE WHEN counted_sells > 0 THEN winning_sells / counted_sells END AS win_rate,
    CASE WHEN capital > 1E-9 * all_bought THEN total_pnl / capital END AS roi,
    volume_usd,
    total_bought,
    total_sold,
    matched_cost,
    CAST(NULL AS DOUBLE) AS sold_qty,
    CAST(NULL AS DOUBLE) AS matched_qty,
    CASE WHEN sell_count > 0 AND total_sold > 0 THEN matched_proceeds / total_sold END
        AS basis_coverage,
    closed_positions,
    counted_sells,
    matched_proceeds,
    capital,
    all_bought
FROM (
    SELECT
        w.wallet_address,
        ws.window_name,
        ws.start_t,
        ws.end_t,
        coalesce(sum(r.realized_pnl), 0E0) AS realized_pnl,
        coalesce(sum(r.unrealized_pnl), 0E0) AS unrealized_pnl,
        coalesce(sum(r.total_pnl), 0E0) AS total_pnl,
        CAST(coalesce(sum(r.trade_count), 0) AS BIGINT) AS trade_count,
        CAST(coalesce(sum(r.buy_count), 0) AS BIGINT) AS buy_count,
        CAST(coalesce(sum(r.sell_count), 0) AS BIGINT) AS sell_count,
        CAST(coalesce(sum(r.winning_sells), 0) AS BIGINT) AS winning_sells,
        CAST(coalesce(sum(r.counted_sells), 0) AS BIGINT) AS counted_sells,
        coalesce(sum(r.volume_usd), 0E0) AS volume_usd,
        coalesce(sum(r.total_bought), 0E0) AS total_bought,
        coalesce(sum(r.total_sold), 0E0) AS total_sold,
        coalesce(sum(r.matched_cost), 0E0) AS matched_cost,
        coalesce(sum(r.matched_proceeds), 0E0) AS matched_proceeds,
        coalesce(sum(r.capital), 0E0) AS capital,
        coalesce(sum(r.all_bought), 0E0) AS all_bought,
        CAST(coalesce(sum(r.closed_positions), 0) AS BIGINT) AS closed_positions
    FROM wallets w
    CROSS JOIN windows ws
    LEFT JOIN {{window_token_rows}} r
        ON r.wallet_address = w.wallet_address AND r.window_name = ws.window_name
    GROUP BY w.wallet_address, ws.window_name, ws.start_t, ws.end_t
) portfolio
