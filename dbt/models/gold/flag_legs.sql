-- Every non-quote side of a swap of bronze.wallet_trades as a leg, for the behaviour
-- flags: deduplicated and rejected as silver does (docs/pnl.md §1), but without prices,
-- because timing needs none. Empty when the lake has no trades yet.
{% if lake_has('bronze.wallet_trades') %}
with trades as (
    select *
    from {{ source('bronze', 'wallet_trades') }}
    qualify row_number() over (
        partition by tx_hash, ins_index, inner_ins_index, fill_id, wallet_address
        order by fetched_at desc nulls last
    ) = 1
),

valid as (
    select *
    from trades
    where from_amount > 0 and isfinite(from_amount)
      and to_amount > 0 and isfinite(to_amount)
      and from_token_address is not null and to_token_address is not null
      and from_token_address <> to_token_address
)

select
    wallet_address, to_token_address as token_address, 'buy' as side, block_unix_time,
    tx_hash, ins_index, inner_ins_index, fill_id, to_amount as quantity
from valid
where {{ not_quote('to_token_address') }}
union all
select
    wallet_address, from_token_address as token_address, 'sell' as side, block_unix_time,
    tx_hash, ins_index, inner_ins_index, fill_id, from_amount as quantity
from valid
where {{ not_quote('from_token_address') }}
{% else %}
select
    cast(null as varchar) as wallet_address, cast(null as varchar) as token_address,
    cast(null as varchar) as side, cast(null as bigint) as block_unix_time,
    cast(null as varchar) as tx_hash, cast(null as integer) as ins_index,
    cast(null as integer) as inner_ins_index, cast(null as varchar) as fill_id,
    cast(null as double) as quantity
where false
{% endif %}
