"""`st follow`: the long-running process that drains the stream, raises alerts within a
second and keeps silver and the flows current (service.py says how it fits together)."""
