{#- True when st found `name` (layer.table) in the lake: a model reads a table only then. -#}
{% macro lake_has(name) -%}
    {{ return(name in var('lake_tables')) }}
{%- endmacro %}

{#- `column` is not one of the quote assets (pnl.quote_assets), which are cash, not positions. -#}
{% macro not_quote(column) -%}
    {%- if var('quote_assets') -%}
    {{ column }} not in (
        {%- for address in var('quote_assets') %}'{{ address }}'{{ "," if not loop.last }}{% endfor -%}
    )
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}

{#- The flags (gold.wallet_flags.flags, comma-separated) that exclude from the ranking. -#}
{% macro excluding_flags(flags_column) -%}
    {%- if var('exclude_flagged') and var('exclude_flags') -%}
    list_has_any(string_split({{ flags_column }}, ','), [
        {%- for flag in var('exclude_flags') %}'{{ flag }}'{{ "," if not loop.last }}{% endfor -%}
    ])
    {%- else -%}
    false
    {%- endif -%}
{%- endmacro %}

{#- Structural constants the models share (not thresholds: those are vars). -#}
{% macro seconds_per_day() %}86400{% endmacro %}
{#- A sell's matched quantity below this share of it is float residue, not a match (pnl.md §2). -#}
{% macro float_residue() %}1e-9{% endmacro %}

{#- Per wallet, the share of its sold quantity that had a matched purchase (pnl.md):
    silver.wallet_pnl_windows' all-time ALL_TOKENS basis_coverage when silver wrote it;
    before that, from silver's per-token unmatched_sell_qty and the sold quantity of
    flag_legs, each token weighted by its USD sold. Float residue is clamped to [0, 1]. -#}
{% macro wallet_basis_coverage() -%}
    {%- if lake_has('silver.wallet_pnl_windows') and 'all' in var('pnl_windows') %}
    select wallet_address, least(1, greatest(0, basis_coverage)) as basis_coverage
    from {{ source('silver', 'wallet_pnl_windows') }}
    where token_address = 'ALL_TOKENS' and "window" = 'all'
    {%- else %}
    with sold as (
        select wallet_address, token_address, sum(quantity) as sold_qty
        from {{ ref('flag_legs') }}
        where side = 'sell'
        group by wallet_address, token_address
    ),

    tokens as (
        select
            p.wallet_address,
            p.total_sold,
            least(1, greatest(0, 1 - coalesce(p.unmatched_sell_qty, 0) / s.sold_qty)) as coverage
        from {{ source('silver', 'wallet_pnl') }} as p
        join sold as s using (wallet_address, token_address)
        where p.token_address <> 'ALL_TOKENS' and s.sold_qty > 0 and p.total_sold > 0
    )

    select wallet_address, sum(total_sold * coverage) / sum(total_sold) as basis_coverage
    from tokens
    group by wallet_address
    {%- endif %}
{%- endmacro %}
