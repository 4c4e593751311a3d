-- Deduplicated swaps of the selected wallets, flagged valid or rejected (docs/pnl.md §1.1-1.2).
SELECT
    wallet, tx_hash, ins_index, inner_ins_index, t,
    from_token, from_amount, from_price_usd, to_token, to_amount, to_price_usd,
    coalesce(
        from_amount > 0 AND NOT isnan(from_amount) AND from_amount < double('inf')
        AND to_amount > 0 AND NOT isnan(to_amount) AND to_amount < double('inf')
        AND from_token IS NOT NULL AND to_token IS NOT NULL
        AND from_token <> to_token,
        FALSE
    ) AS is_valid,
    duplicates
FROM (
    SELECT
        wallet_address AS wallet, tx_hash, ins_index, inner_ins_index,
        block_unix_time AS t,
        from_token_address AS from_token, from_amount, from_price_usd,
        to_token_address AS to_token, to_amount, to_price_usd,
        count(*) OVER (PARTITION BY tx_hash, ins_index, inner_ins_index, wallet_address)
            - 1 AS duplicates,
        row_number() OVER (
            PARTITION BY tx_hash, ins_index, inner_ins_index, wallet_address
            ORDER BY fetched_at DESC NULLS LAST, run_id DESC NULLS LAST
        ) AS dup_rank
    FROM bronze_wallet_trades
    WHERE {{wallet_filter}}
) d
WHERE dup_rank = 1
