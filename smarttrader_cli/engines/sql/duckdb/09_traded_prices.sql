-- Each token's last priced leg among the legs given (docs/pnl.md §5): its unit USD value and
-- order key. One SELECT: 03_prices.sql and the incremental prices (10_) embed it.
SELECT token, arg_max(value / qty, k) AS price, max(k) AS k
FROM (
    SELECT token, value, qty,
           {'t': t, 'tx': tx_hash, 'ins': ins_index, 'inner': inner_ins_index, 'wallet': wallet}
               AS k
    FROM {{legs}}
    WHERE value IS NOT NULL
)
GROUP BY token
