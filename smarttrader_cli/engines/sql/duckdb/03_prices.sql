-- Latest price per token: newest usable snapshot price, else the last priced leg (§5).
CREATE OR REPLACE TEMP TABLE st_prices AS
WITH snap AS (
    SELECT token_address AS token, arg_max(price, snapshot_at) AS price
    FROM bronze.token_metrics
    WHERE isfinite(price) AND price > 0
    GROUP BY token_address
),
traded AS (
    SELECT token,
           arg_max(value / qty, (t, tx_hash, ins_index, inner_ins_index, wallet)) AS price
    FROM {{price_legs}}
    WHERE value IS NOT NULL
    GROUP BY token
)
SELECT coalesce(snap.token, traded.token) AS token, coalesce(snap.price, traded.price) AS price
FROM snap FULL OUTER JOIN traded ON snap.token = traded.token;
