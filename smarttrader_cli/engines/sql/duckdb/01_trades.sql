-- Deduplicated swaps of the selected wallets, flagged valid or rejected (docs/pnl.md §1.1-1.2).
-- The dedupe window is left out when the caller has checked that the natural key is
-- already unique in {{source}} (bronze is merged on it), and duplicates is then 0.
CREATE OR REPLACE TEMP {{kind}} {{trades}} AS
SELECT
    wallet_address AS wallet,
    tx_hash,
    ins_index,
    inner_ins_index,
    block_unix_time AS t,
    from_token_address AS from_token,
    from_amount,
    from_price_usd,
    to_token_address AS to_token,
    to_amount,
    to_price_usd,
    coalesce(
        from_amount > 0 AND isfinite(from_amount)
        AND to_amount > 0 AND isfinite(to_amount)
        AND from_token_address IS NOT NULL AND to_token_address IS NOT NULL
        AND from_token_address <> to_token_address,
        FALSE
    ) AS is_valid,
    {{duplicates}} AS duplicates
FROM {{source}}
{{dedupe}};
