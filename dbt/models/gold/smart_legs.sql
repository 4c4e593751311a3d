{{ config(materialized='ephemeral') }}
-- The smart-wallet buy and sell legs since `flows_since` that token_flows and
-- smart_money_now sum. Quote assets (SOL, USDC, ...) are what smart money pays with,
-- not what it is buying.
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
