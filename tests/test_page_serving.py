"""How the page and its files are served: GET / by Accept, types, caching, no way out of
the static folder, and no token needed for them (the API still needs it)."""

from __future__ import annotations

import re

import httpx
import pytest

from streambind.server.page import prefers_html, static_files

BROWSER_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)
INDEX = {"name": "streambind", "endpoints": "/api/endpoints", "runs": "/api/runs",
         "health": "/healthz"}  # fmt: skip


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (None, False),  # no header: as before
        ("*/*", False),  # curl, httpx
        ("application/json", False),
        ("application/json, text/html;q=0.9", False),
        ("text/html;q=0.5, application/json", False),
        ("text/*, application/json", False),
        (BROWSER_ACCEPT, True),  # a browser's navigation
        ("text/html", True),
        ("text/html, */*;q=0.1", True),
        ("application/json;q=0, text/html", True),
    ],
)
async def test_get_slash_answers_the_page_only_when_accept_prefers_html(
    client: httpx.AsyncClient, accept: str | None, html: bool
) -> None:
    headers = {"Accept": accept} if accept is not None else {}
    if accept is None:
        client.headers.pop("Accept", None)
    response = await client.get("/", headers=headers)
    assert response.status_code == 200
    assert response.headers["vary"] == "Accept"
    if html:
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert '<script type="module" src="static/page.js">' in response.text
        assert response.headers["cache-control"] == "no-cache"
        assert "default-src 'self'" in response.headers["content-security-policy"]
    else:
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        assert response.json() == INDEX
    assert prefers_html(accept or "") is html


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("streambind.js", "text/javascript; charset=utf-8"),
        ("sse.js", "text/javascript; charset=utf-8"),
        ("page.js", "text/javascript; charset=utf-8"),
        ("page.css", "text/css; charset=utf-8"),
    ],
)
async def test_static_files_have_their_type_an_etag_and_answer_304_when_unchanged(
    client: httpx.AsyncClient, name: str, content_type: str
) -> None:
    response = await client.get(f"/static/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"
    etag = response.headers["etag"]
    assert response.content == static_files()[name].body
    again = await client.get(f"/static/{name}", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    weak = await client.get(f"/static/{name}", headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304
    changed = await client.get(f"/static/{name}", headers={"If-None-Match": '"other"'})
    assert changed.status_code == 200


async def test_the_page_has_an_etag_too(client: httpx.AsyncClient) -> None:
    page = await client.get("/", headers={"Accept": "text/html"})
    again = await client.get(
        "/", headers={"Accept": "text/html", "If-None-Match": page.headers["etag"]}
    )
    assert again.status_code == 304
    json_index = await client.get("/", headers={"If-None-Match": page.headers["etag"]})
    assert json_index.status_code == 200  # the JSON index is never answered 304
    assert json_index.json() == INDEX


@pytest.mark.parametrize(
    "path",
    [
        "/static/index.html",  # served at / only, where its relative links resolve
        "/static/nothing.js",
        "/static/../api.py",
        "/static/..%2fapi.py",
        "/static/%2e%2e%2fpage.py",
        "/static/..%2f..%2fpyproject.toml",
        "/static/page.py",
        "/static/",
        "/static/%00",
        "/static/page.js%00.py",
        "/static/.",
        "/static/page.js/x",
    ],
)
async def test_nothing_outside_the_pages_own_files_is_served(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["type"] == "not_found"


async def test_the_page_and_its_files_need_no_token_while_the_api_does(start) -> None:  # type: ignore[no-untyped-def]
    server = await start(token="t0ken")
    async with httpx.AsyncClient(base_url=server.url) as client:
        page = await client.get("/", headers={"Accept": "text/html"})
        assert page.status_code == 200
        for name in static_files():
            if name != "index.html":
                assert (await client.get(f"/static/{name}")).status_code == 200, name
        assert (await client.get("/api/endpoints")).status_code == 401
        assert (await client.get("/")).json() == INDEX


def test_the_package_ships_every_file_the_page_loads() -> None:
    # What index.html and the modules import is all among the files served.
    files = static_files()
    assert {"index.html", "page.css", "page.js", "card.js", "form.js", "progress.js",
            "sse.js", "streambind.js"} == set(files)  # fmt: skip
    page = files["index.html"].body.decode()
    assert 'href="static/page.css"' in page and 'src="static/page.js"' in page
    for name, found in files.items():
        if name.endswith(".js"):
            text = found.body.decode()
            # Relative imports only: the page works under any path prefix.
            for specifier in re.findall(r'^(?:import|export|\}) .*?from "([^"]+)"', text, re.M):
                assert specifier.startswith("./") and specifier[2:] in files, (name, specifier)
            # ... and never an absolute path of the API.
            assert not re.search(r"[\"'`]/(api|static)/", text), name
