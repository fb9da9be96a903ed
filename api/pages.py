"""The dashboard: its page `api/static/index.html` (or a note that it is not built) and its
files under /static, ES modules that the browser loads as they are, without a build step."""

from __future__ import annotations

import os
from pathlib import PurePath

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from zjobs.api.context import context

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>zjobs</title></head>
<body><h1>zjobs</h1><p>The dashboard is not built (api/static/index.html is missing).
The API works: see <a href="docs">/docs</a>.</p></body></html>
"""

ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
"""The dashboard's own types, whatever the host's MIME table says: a browser runs an ES module
only if it comes as JavaScript, and some hosts (a Windows registry) map `.js` to text/plain."""


NO_CACHE = {"Cache-Control": "no-cache"}


async def dashboard(request: Request) -> Response:
    index = context(request).settings.static_dir / "index.html"
    if not index.is_file():
        return HTMLResponse(NOT_BUILT)
    return FileResponse(index, media_type="text/html", headers=NO_CACHE)


class Assets(StaticFiles):
    """/static: the dashboard's files, each with its type, checked again at every load.

    `no-cache` makes the browser ask (a 304 when nothing changed) instead of guessing from
    the file's age: the modules import one another, and a page that took some from an
    older install out of its cache and some from the new one would not start.
    """

    def file_response(self, full_path: str | os.PathLike[str], stat_result: os.stat_result,
                      scope: Scope, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(NO_CACHE)
        media_type = ASSET_TYPES.get(PurePath(full_path).suffix)
        if media_type is not None and "content-type" in response.headers:
            response.headers["content-type"] = media_type
        return response
