-- Latest price per token: newest usable snapshot price, else the last priced leg (§5).
-- The traded CTE gives each token's last priced leg: (token, price, k), k its order key
-- (t, tx, ins_index, inner_ins_index, wallet); kept with the price as the incremental
-- state (silver.wallet_pnl_prices).
CREATE OR REPLACE TEMP TABLE st_prices AS
WITH snap AS (
    SELECT token_address AS token, arg_max(price, snapshot_at) AS price
    FROM bronze.token_metrics
    WHERE isfinite(price) AND price > 0
    GROUP BY token_address
),
traded AS (
{{traded}}
)
SELECT
    coalesce(snap.token, traded.token) AS token,
    coalesce(snap.price, traded.price) AS price,
    snap.price AS snapshot_price,
    traded.price AS traded_price,
    traded.k AS traded_key
FROM snap FULL OUTER JOIN traded ON snap.token = traded.token;
