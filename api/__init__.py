"""zjobs HTTP face: REST, Server-Sent Events, metrics and the dashboard (Starlette + uvicorn).

Modules, one concern each:

- `main`      the `zjobs api` entry point: settings, uvicorn
- `app`       the app factory, its lifespan and the routes table
- `context`   what every route shares: the broker client, the event hub, settings
- `auth`      the bearer-token middleware
- `limits`    the request body size limit
- `errors`    API errors and the one table mapping broker error codes to HTTP statuses
- `render`    broker dicts to REST JSON (ISO times, base64 bytes)
- `schemas`   pydantic models of request and response bodies
- `uploads`   multipart `exec` submissions
- `jobs`      the /jobs routes
- `status`    /workers, /queues, /stats, /health
- `hub`       one SUB socket fanned out to every SSE client, gaps filled from the broker
- `feeds`     one SSE client's events or log lines: replayed, then live, no gap or duplicate
- `streams`   the SSE routes
- `metrics`   Prometheus /metrics
- `openapi`   /openapi.json and /docs
- `pages`     the dashboard page
"""
