-- The candidates of the ranking: one portfolio (ALL_TOKENS) row per wallet from silver.
select *
from {{ source('silver', 'wallet_pnl') }}
where token_address = 'ALL_TOKENS'
