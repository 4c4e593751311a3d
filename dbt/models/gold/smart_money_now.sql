-- What smart money is buying now: token_flows' legs summed over the whole recompute
-- range, with distinct wallets counted over the range (not summed per window).
with legs as (
    select
        token_address,
        wallet,
        direction,
        value_usd,
        event_time
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

-- Unknown USD stays unknown (null), as in token_flows.
select
    token_address,
    case when count(*) filter (where value_usd is null) = 0
         then coalesce(sum(value_usd) filter (where direction = 'buy'), 0)
            - coalesce(sum(value_usd) filter (where direction = 'sell'), 0) end as net_flow_usd,
    case when count(*) filter (where direction = 'buy' and value_usd is null) = 0
         then coalesce(sum(value_usd) filter (where direction = 'buy'), 0) end as buy_volume_usd,
    case when count(*) filter (where direction = 'sell' and value_usd is null) = 0
         then coalesce(sum(value_usd) filter (where direction = 'sell'), 0) end as sell_volume_usd,
    count(*) filter (where direction = 'buy') as buy_count,
    count(*) filter (where direction = 'sell') as sell_count,
    count(distinct wallet) filter (where direction = 'buy') as smart_buyers,
    count(distinct wallet) filter (where direction = 'sell') as smart_sellers,
    count(*) filter (where value_usd is null) as unpriced_legs,
    max(event_time) as last_trade_at
from legs
group by token_address
