"""The broker's core, pure (no sockets): the engine and its books (queues, throttle, workers,
waits, schedules, events, artifacts), the client commands it answers, the checks every
submitted job passes.
"""
