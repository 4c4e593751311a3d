-- Every non-quote side of a valid swap becomes a buy or sell leg with a USD value (§1.4-1.6).
WITH priced AS (
    SELECT
        *,
        CASE WHEN NOT isnan(from_price_usd) AND from_price_usd > 0
                  AND from_price_usd < double('inf')
            THEN from_amount * from_price_usd END AS from_value,
        CASE WHEN NOT isnan(to_price_usd) AND to_price_usd > 0
                  AND to_price_usd < double('inf')
            THEN to_amount * to_price_usd END AS to_value
    FROM {{trades}}
    WHERE is_valid
)
SELECT wallet, to_token AS token, TRUE AS is_buy, to_amount AS qty,
       coalesce(to_value, from_value) AS value, t, tx_hash, ins_index, inner_ins_index
FROM priced
WHERE {{to_not_quote}}
UNION ALL
SELECT wallet, from_token AS token, FALSE AS is_buy, from_amount AS qty,
       coalesce(from_value, to_value) AS value, t, tx_hash, ins_index, inner_ins_index
FROM priced
WHERE {{from_not_quote}}
