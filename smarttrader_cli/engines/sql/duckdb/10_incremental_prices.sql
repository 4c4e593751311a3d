-- The traded fallback prices of an incremental run (docs/pnl.md §7): the last priced leg
-- of each token over the stored state (silver.wallet_pnl_prices) and the recomputed
-- wallets' legs (st_legs: their whole histories). A stored leg of a recomputed wallet is
-- replaced by that wallet's legs; when they no longer reach its order key (the trade was
-- removed or changed), the token is in st_lost_prices and is priced again from bronze.
CREATE OR REPLACE TEMP TABLE st_fresh_prices AS
{{fresh}};

CREATE OR REPLACE TEMP TABLE st_stored_prices AS
SELECT
    token_address AS token,
    traded_price AS price,
    {'t': traded_at, 'tx': traded_tx, 'ins': traded_ins_index, 'inner': traded_inner_ins_index,
     'wallet': traded_wallet} AS k,
    traded_wallet IN (SELECT wallet FROM {{recomputed}}) AS recomputed
FROM silver.wallet_pnl_prices
WHERE traded_price IS NOT NULL;

CREATE OR REPLACE TEMP TABLE st_lost_prices AS
SELECT s.token
FROM st_stored_prices s
LEFT JOIN st_fresh_prices f ON f.token = s.token
WHERE s.recomputed AND (f.k IS NULL OR f.k < s.k);

CREATE OR REPLACE TEMP TABLE st_traded_prices AS
SELECT token, arg_max(price, k) AS price, max(k) AS k
FROM (
    SELECT token, price, k FROM st_fresh_prices
    UNION ALL
    SELECT token, price, k FROM st_stored_prices WHERE NOT recomputed
)
WHERE token NOT IN (SELECT token FROM st_lost_prices)
GROUP BY token;
