"""The dashboard page: `api/static/index.html`, or a note that it is not built."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

from .context import context

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>zjobs</title></head>
<body><h1>zjobs</h1><p>The dashboard is not built (api/static/index.html is missing).
The API works: see <a href="docs">/docs</a>.</p></body></html>
"""


async def dashboard(request: Request) -> Response:
    index = context(request).settings.static_dir / "index.html"
    if not index.is_file():
        return HTMLResponse(NOT_BUILT)
    return FileResponse(index, media_type="text/html")
