"""Pages in the HTTP API: the query parameters of every list and how a page is answered."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request, Response

from projections.pages import Page

Limit = Annotated[int, Query(ge=1, le=1000, description="rows per page")]
Cursor = Annotated[
    str | None, Query(description="next_cursor of the previous page (X-Next-Cursor header)")
]


def paged(request: Request, response: Response, page: Page) -> list[dict[str, Any]]:
    """The page's rows as the body; the cursor of the next page, if any, in the X-Next-Cursor
    header and as a Link rel="next" (RFC 8288), so lists stay plain JSON arrays."""
    if page.next_cursor is not None:
        response.headers["X-Next-Cursor"] = page.next_cursor
        url = request.url.include_query_params(cursor=page.next_cursor)
        response.headers["Link"] = f'<{url}>; rel="next"'
    return page.rows
