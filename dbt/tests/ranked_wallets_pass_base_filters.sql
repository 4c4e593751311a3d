-- No ranked wallet may fall below the base filters, judged on its silver portfolio row
-- of the ranking window (not on the model's own copy of the metrics), and every ranked
-- wallet must have one.
select r.wallet_address
from {{ ref('smart_wallets') }} as r
{%- if var('rank_window') == 'all' %}
left join {{ source('silver', 'wallet_pnl') }} as p
    on p.wallet_address = r.wallet_address
    and p.token_address = 'ALL_TOKENS'
{%- else %}
left join {{ source('silver', 'wallet_pnl_windows') }} as p
    on p.wallet_address = r.wallet_address
    and p.token_address = 'ALL_TOKENS'
    and p."window" = '{{ var("rank_window") }}'
{%- endif %}
where p.wallet_address is null
   or not coalesce({{ passes_base_filters('p.') }}, false)
