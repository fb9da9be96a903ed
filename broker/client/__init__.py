"""The Python client: each operation once as a sans-IO plan (plans), driven by the blocking and
the asyncio client (client) through typed methods generated from the plans (methods, by
methods_gen), with the connection's state (link), the coalesced requests of a tick
(wait_batches, submit_batches) and the jobs built on the client side (functions, programs,
models).
"""
