"""docs/browser.md's examples, pasted as they stand into a page of another origin and run in
headless Chromium against a server started with --cors-origin for it."""

from __future__ import annotations

import json

from aiohttp import web
from browser import Page
from docblocks import DOCUMENTED_SERVER, example
from foreign import serve


def _user_site(pages: dict[str, str]) -> web.Application:
    """Another origin's site: each page is served as it was pasted."""

    async def serve_page(request: web.Request) -> web.Response:
        return web.Response(text=pages[request.match_info["name"]], content_type="text/html")

    app = web.Application()
    app.router.add_get("/{name}", serve_page)
    return app


async def test_the_documented_page_runs_an_import_from_another_origin(start, page: Page) -> None:  # type: ignore[no-untyped-def]
    page_source = example("browser-page")
    pages: dict[str, str] = {}
    async with serve(_user_site(pages)) as site:
        server = await start(cors_origin=site)
        pages["import.html"] = page_source.replace(DOCUMENTED_SERVER, server.url)
        await page.call(page.driver.get, f"{site}/import.html")
        await page.until(
            lambda d: d.find_element("id", "status").text == "succeeded", "the import succeeds"
        )
        shown = await page.script(
            "return [document.querySelector('#bar').value,"
            " document.querySelector('#log').textContent]"
        )
    assert shown[0] == 1
    last = [json.loads(line) for line in shown[1].splitlines()]
    assert len(last) == 5
    assert last[-2] == {"step": "import", "done": 200, "total": 200}
    assert last[-1] == {"step": "publish", "rows": 200}


async def test_the_documented_decoder_snippet_reads_a_runs_stream(start, page: Page) -> None:  # type: ignore[no-untyped-def]
    snippet = example("browser-decoder")
    pages: dict[str, str] = {}
    async with serve(_user_site(pages)) as site:
        server = await start(cors_origin=site)
        # The snippet as a module of a page that keeps what it logs.
        pages["snippet.html"] = (
            "<!doctype html><meta charset=utf-8><script>window.logged = [];"
            " console.log = (...args) => window.logged.push(args);</script>"
            '<script type="module">\n'
            + snippet.replace(DOCUMENTED_SERVER, server.url)
            + "\nwindow.finished = true;</script>"
        )
        await page.call(page.driver.get, f"{site}/snippet.html")
        await page.until(lambda d: d.execute_script("return window.finished"), "it ends")
        logged = await page.script("return window.logged")
    types = [event_type for event_type, _, _ in logged]
    assert types == ["message"] * (len(logged) - 1) + ["end"]
    assert [int(event_id) for _, event_id, _ in logged] == list(range(1, len(logged) + 1))
    assert json.loads(logged[-2][2]) == {"step": "publish", "rows": 50}
    assert json.loads(logged[-1][2])["status"] == "succeeded"
