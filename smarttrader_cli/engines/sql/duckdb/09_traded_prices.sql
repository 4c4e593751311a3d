-- Each token's last priced leg among the legs given (docs/pnl.md §5): its unit USD value and
-- order key. One SELECT: 03_prices.sql and the incremental prices (10_) embed it. One max
-- of (order key, price): the key is unique per leg, so the price never decides it, and one
-- comparison per leg instead of an arg_max and a max.
SELECT token, m.price,
       {'t': m.t, 'tx': m.tx, 'ins': m.ins, 'inner': m.inner, 'wallet': m.wallet} AS k
FROM (
    SELECT token,
           max({'t': t, 'tx': tx_hash, 'ins': ins_index, 'inner': inner_ins_index,
                'wallet': wallet, 'price': value / qty}) AS m
    FROM {{legs}}
    WHERE value IS NOT NULL
    GROUP BY token
)
