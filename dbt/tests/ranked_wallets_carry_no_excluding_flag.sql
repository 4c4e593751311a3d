-- No ranked wallet may carry a flag that excludes it (gold.exclude_flags).
select r.wallet_address, f.flags
from {{ ref('smart_wallets') }} as r
join {{ ref('wallet_flags') }} as f using (wallet_address)
where {{ excluding_flags('f.flags') }}
