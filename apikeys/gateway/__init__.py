"""The API gateway's state and decisions: the store interface (base), the Redis and in-memory stores,
the Lua scripts (lua/), request outcomes carried along with later calls (outcomes), and the per-request
decision with its database fallbacks (decision). Nothing is imported here, so the stores load without
Django's models (a spawned process, a benchmark)."""
