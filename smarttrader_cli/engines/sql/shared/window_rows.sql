-- Shared by both engines: the metrics of each (wallet, token, window) row from its totals
-- in the `window_totals` CTE (docs/pnl.md §8). The expressions of the
-- 'all' window are token_rows.sql's, so its numbers are silver.wallet_pnl's exactly. The
-- last four columns feed the ALL_TOKENS rows and are dropped at the end. An ROI needs a
-- capital above float residue: 1e-9 of all the (wallet, token) ever bought (the open cost
-- total_bought - matched_cost of a closed position can be a residue, not zero).
SELECT
    wallet AS wallet_address,
    token AS token_address,
    window_name,
    {{seconds_to_timestamp}}(start_t) AS window_start,
    {{seconds_to_timestamp}}(end_t) AS window_end,
    realized_pnl,
    open_value - open_cost AS unrealized_pnl,
    realized_pnl + open_value - open_cost AS total_pnl,
    buy_count + sell_count AS trade_count,
    buy_count,
    sell_count,
    winning_sells,
    CASE WHEN counted_sells > 0 THEN winning_sells / counted_sells END AS win_rate,
    CASE WHEN capital > 1E-9 * all_bought THEN (realized_pnl + open_value - open_cost) / capital
        END AS roi,
    total_bought + total_sold AS volume_usd,
    total_bought,
    total_sold,
    matched_cost,
    sold_qty,
    matched_qty,
    CASE WHEN sell_count > 0 THEN matched_qty / sold_qty END AS basis_coverage,
    CAST(CASE WHEN counted_sells > 0 THEN 1 ELSE 0 END AS BIGINT) AS closed_positions,
    counted_sells,
    matched_proceeds,
    capital,
    all_bought
FROM window_totals
