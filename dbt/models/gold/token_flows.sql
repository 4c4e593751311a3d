-- Smart-wallet flow per token and time window, for the windows that start at or after
-- `flows_since` (st passes the start of the recompute range, aligned to a window).
-- Quote assets (SOL, USDC, ...) are what smart money pays with, not what it is buying.
with legs as (
    select
        token_address,
        wallet,
        direction,
        value_usd,
        to_timestamp(
            floor(epoch(event_time) / ({{ var('flows_window_minutes') }} * 60))
            * ({{ var('flows_window_minutes') }} * 60)
        ) as window_start
    from {{ source('silver', 'webhook_swaps') }}
    where is_smart_wallet
      and direction in ('buy', 'sell')
      and event_time >= cast('{{ var("flows_since") }}' as timestamptz)
      {%- if var('quote_assets') %}
      and token_address not in (
          {%- for address in var('quote_assets') %}'{{ address }}'{{ "," if not loop.last }}{% endfor -%}
      )
      {%- endif %}
)

select
    token_address,
    window_start,
    cast({{ var('flows_window_minutes') }} as integer) as window_minutes,
    coalesce(sum(value_usd) filter (where direction = 'buy'), 0) as buy_volume_usd,
    coalesce(sum(value_usd) filter (where direction = 'sell'), 0) as sell_volume_usd,
    coalesce(sum(value_usd) filter (where direction = 'buy'), 0)
        - coalesce(sum(value_usd) filter (where direction = 'sell'), 0) as net_flow_usd,
    count(*) filter (where direction = 'buy') as buy_count,
    count(*) filter (where direction = 'sell') as sell_count,
    count(distinct wallet) filter (where direction = 'buy') as smart_buyers,
    count(distinct wallet) filter (where direction = 'sell') as smart_sellers
from legs
group by token_address, window_start
