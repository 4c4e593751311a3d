-- The sells' totals in one aggregation: per (wallet, token) (bucket NULL), which
-- silver.wallet_pnl and the 'all' window use, and per (wallet, token, window bucket), from
-- which each finite window sums the buckets it contains (08_window_token_rows.sql). A leg's
-- bucket is never NULL, so NULL marks the per-group totals.
SELECT
    wallet, token, bucket,
    {{include:sell_totals.sql}}
FROM {{sells}}
GROUP BY GROUPING SETS ((wallet, token), (wallet, token, bucket))
