"""The wire contract, and what every process builds on: the ZJP/1 frames (protocol), the job's
fields and states (schema, jobs), the bounds of every field (limits, text), the error tree,
the settings table, CURVE keys, socket and logging helpers.
"""
