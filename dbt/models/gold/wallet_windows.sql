-- Per wallet, its portfolio (ALL_TOKENS) numbers in every window of pnl.windows side by
-- side (total_pnl_7d, closed_positions_7d, basis_coverage_7d, ...), for the tier rules.
-- Empty when silver has not written silver.wallet_pnl_windows.
{% if lake_has('silver.wallet_pnl_windows') %}
select
    wallet_address
    {%- for w in var('pnl_windows') %},
    max(total_pnl) filter (where "window" = '{{ w }}') as "total_pnl_{{ w }}",
    max(closed_positions) filter (where "window" = '{{ w }}') as "closed_positions_{{ w }}",
    -- a share: float residue of silver's USD-weighted ratio clamped to [0, 1]
    least(1, greatest(0, max(basis_coverage) filter (where "window" = '{{ w }}')))
        as "basis_coverage_{{ w }}"
    {%- endfor %}
from {{ source('silver', 'wallet_pnl_windows') }}
where token_address = 'ALL_TOKENS'
group by wallet_address
{% else %}
select
    cast(null as varchar) as wallet_address
    {%- for w in var('pnl_windows') %},
    cast(null as double) as "total_pnl_{{ w }}",
    cast(null as bigint) as "closed_positions_{{ w }}",
    cast(null as double) as "basis_coverage_{{ w }}"
    {%- endfor %}
where false
{% endif %}
