-- Every non-quote side of a valid swap becomes a buy or sell leg with a USD value (§1.4-1.6).
-- One scan of the trades: each is paired with both sides and the quote sides dropped.
CREATE OR REPLACE TEMP {{kind}} {{legs}} AS
WITH priced AS (
    SELECT
        *,
        CASE WHEN isfinite(from_price_usd) AND from_price_usd > 0
            THEN from_amount * from_price_usd END AS from_value,
        CASE WHEN isfinite(to_price_usd) AND to_price_usd > 0
            THEN to_amount * to_price_usd END AS to_value
    FROM {{trades}}
    WHERE is_valid
)
SELECT
    wallet,
    CASE WHEN side.is_buy THEN to_token ELSE from_token END AS token,
    side.is_buy,
    CASE WHEN side.is_buy THEN to_amount ELSE from_amount END AS qty,
    CASE WHEN side.is_buy THEN coalesce(to_value, from_value)
         ELSE coalesce(from_value, to_value) END AS value,
    t, tx_hash, ins_index, inner_ins_index
FROM priced CROSS JOIN (VALUES (TRUE), (FALSE)) side(is_buy)
WHERE CASE WHEN side.is_buy THEN {{to_not_quote}} ELSE {{from_not_quote}} END;
