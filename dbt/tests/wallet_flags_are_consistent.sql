-- Every flag is a known name, is_flagged says whether there is one, an excluded wallet
-- is flagged, each flag has its reason, and off-curve, unparseable and known accounts
-- carry their flag.
with flags as (
    select f.*, string_split(f.flags, ',') as names
    from {{ ref('wallet_flags') }} as f
)

select wallet_address, flags, reasons
from flags
where is_flagged <> (flags <> '')
   or (excluded and not is_flagged)
   or (is_flagged and not list_has_all(
        ['bot', 'sniper', 'distributor', 'off_curve', 'invalid_address', 'exchange', 'burn',
         'program'], names))
   or (is_flagged and len(names) > len(string_split(reasons, '; ')))
   or (on_curve = false and not list_contains(names, 'off_curve'))
   or (address_error is not null and not list_contains(names, 'invalid_address'))
   or (known_kind is not null and not list_contains(names, known_kind))
