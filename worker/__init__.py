"""The worker: the task registry, the job context, the worker process and its sync slots.
Task authors import `task`, `progress`, `log` and `Retry` from `zjobs`."""
