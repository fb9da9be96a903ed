"""The broker and what it is built on, in rooms of one purpose each:

- `wire`     the wire contract every process shares: frames, job fields, limits, errors,
             settings, CURVE keys
- `client`   the Python client, each operation once as a sans-IO plan
- `core`     the broker's core, pure (no sockets): the engine and its books
- `stores`   SQLite and PostgreSQL, their schema versions, leadership on PostgreSQL
- `bridges`  other protocols served by the broker loop (Majordomo)
- `server`, `standby`  the broker process around the core

Importing this package loads nothing: a process loads only what it runs. The public names
are in `zjobs` itself.
"""
