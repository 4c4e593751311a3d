-- Latest price per token: newest usable snapshot price, else the last priced leg (§5).
WITH snap AS (
    SELECT token_address AS token, max_by(price, snapshot_at) AS price
    FROM bronze_token_metrics
    WHERE NOT isnan(price) AND price > 0 AND price < double('inf')
    GROUP BY token_address
),
traded AS (
    SELECT token,
           max_by(value / qty, struct(t, tx_hash, ins_index, inner_ins_index, wallet)) AS price
    FROM {{price_legs}}
    WHERE value IS NOT NULL
    GROUP BY token
)
SELECT coalesce(snap.token, traded.token) AS token, coalesce(snap.price, traded.price) AS price
FROM snap FULL OUTER JOIN traded ON snap.token = traded.token
