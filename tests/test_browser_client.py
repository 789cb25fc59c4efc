"""streambind.js in headless Chromium: the WHATWG decoder against the same vectors as the
Python one, resuming after a cut with no gap or duplicate, and the token kept for the tab."""

from __future__ import annotations

import json
from pathlib import Path

import flows
from browser import Page
from cutter import CuttingProxy

from streambind.server import RunningServer

VECTORS = json.loads((Path(__file__).parent / "data" / "sse-vectors.json").read_text())["vectors"]

# Each vector fed to the decoder as its chunks, then as all its bytes one at a time.
_DECODE_ALL = """
const [vectors, done] = arguments;
import("./static/sse.js").then(({ SSEDecoder }) => {
  const bytes = (text) => Uint8Array.from(text, (c) => c.charCodeAt(0));
  const decode = (chunks) => {
    const decoder = new SSEDecoder();
    const events = [];
    for (const chunk of chunks) events.push(...decoder.feed(chunk));
    decoder.close();
    return {
      events: events.map((e) => ({ event: e.type, data: e.data, id: e.id })),
      retry: decoder.retry,
    };
  };
  done(vectors.map((vector) => {
    const whole = bytes(vector.chunks_latin1.join(""));
    return {
      name: vector.name,
      chunked: decode(vector.chunks_latin1.map(bytes)),
      byte_by_byte: decode([...whole].map((b) => Uint8Array.of(b))),
    };
  }));
}, (error) => done(String(error)));
"""


async def test_the_js_decoder_follows_every_vector_inside_chromium(
    server: RunningServer, page: Page
) -> None:
    await page.open(server.url + "/")
    results = await page.call(page.driver.execute_async_script, _DECODE_ALL, VECTORS)
    assert isinstance(results, list), results
    assert len(results) == len(VECTORS) == 38
    for vector, result in zip(VECTORS, results, strict=True):
        for how in ("chunked", "byte_by_byte"):
            assert result[how]["events"] == vector["events"], (vector["name"], how)
            if "retry" in vector:
                assert result[how]["retry"] == vector["retry"], (vector["name"], how)


async def test_a_cut_stream_resumes_on_the_card_with_no_gap_and_no_duplicate(
    start, page: Page
) -> None:  # type: ignore[no-untyped-def]
    server = await start(retry_ms=200)
    # The run's stream is cut part-way through its first 30 events (mid-event, most
    # likely); the card's client resumes with Last-Event-ID through the same proxy.
    host, port = server.url.removeprefix("http://").split(":")
    cutter = CuttingProxy(host, int(port), cuts=[1_000], streams_only=True)
    url = await cutter.start()
    try:
        await page.open(url + "/")
        await page.choose("hold", key="cut", before="30", after="30", pad="20")
        await page.run()
        resumed = await page.card_until(
            lambda c: "1 reconnect" in c["stats"] and len(c["log"]) == 30,
            "the card resumes and shows the first 30",
        )
        assert resumed["status"] == "running"
        flows.release("cut")
        done = await page.card_until(lambda c: c["status"] == "succeeded", "the run ends")
    finally:
        await cutter.close()
    numbers = [json.loads(line)["n"] for line in done["log"]]
    assert numbers == list(range(1, 61))
    assert done["stats"].endswith("60 chunks · 1 reconnect")


async def test_the_token_is_asked_for_once_kept_for_the_tab_and_never_put_in_a_url(
    start, page: Page
) -> None:  # type: ignore[no-untyped-def]
    server = await start(token="s3cret-t0ken")
    # The page and its files load without the token; the API asks for it.
    await page.call(page.driver.get, server.url + "/")
    dialog = await page.element("#token-dialog[open]")
    assert "needs a token" in await page.call(lambda: dialog.text)
    await page.fill("#token", "wrong")
    await page.click('#token-dialog button[value="use"]')
    await page.until(
        lambda d: "refused" in d.find_element("id", "token-why").text, "the wrong one refused"
    )
    await page.fill("#token", "s3cret-t0ken")
    await page.click('#token-dialog button[value="use"]')
    await page.element("#run")
    await page.choose("echo", text="hi", times="2")
    await page.run()
    await page.card_until(lambda c: c["status"] == "succeeded", "the run succeeds")
    stored = await page.script("return Object.entries(sessionStorage)")
    assert stored == [[f"streambind-token:{server.url}/", "s3cret-t0ken"]]
    assert await page.script("return localStorage.length") == 0
    # A reload of the tab asks nothing again.
    await page.open(server.url + "/")
    assert not await page.script("return document.querySelector('#token-dialog').open")
    urls = await page.script(
        "return performance.getEntriesByType('resource').map((e) => e.name).concat([location.href])"
    )
    assert urls and not any("s3cret" in u or "access_token" in u for u in urls)


async def test_every_control_is_reached_by_tab_and_named_and_run_works_by_keyboard(
    server: RunningServer, page: Page
) -> None:
    from selenium.webdriver.common.keys import Keys

    await page.open(server.url + "/")
    await page.choose("import", rows="40", batch_size="10", delay_ms="0")
    # Tab from the top of the page through every control, noting each one's name.
    reached = []
    await page.script("document.activeElement.blur(); window.scrollTo(0, 0)")
    body = await page.element("body")
    for _ in range(60):
        await page.call(body.send_keys, Keys.TAB)
        focused = await page.script(
            """
            const el = document.activeElement;
            const label = el.labels && el.labels[0] ? el.labels[0].textContent : '';
            return [el.id || el.dataset.name || el.tagName,
                    (el.getAttribute('aria-label') || label || el.textContent).trim()];
            """
        )
        if reached and focused == reached[0]:
            break
        reached.append(focused)
    names = dict(reached)
    controls = await page.script(
        """return [...document.querySelectorAll('button, input, select, summary')]
            .filter((el) => el.offsetParent !== null)
            .map((el) => el.id || el.dataset.name || el.tagName)"""
    )
    assert set(controls) <= set(names), set(controls) - set(names)
    assert all(names.values()), reached  # each has a name a screen reader reads
    assert names["param-rows"].startswith("rows")
    assert names["handle-stream"] == "Handle stream"
    # Run by keyboard: Enter on the Run button.
    await page.script("document.querySelector('#run').focus()")
    await page.call((await page.element("#run")).send_keys, Keys.ENTER)
    done = await page.card_until(lambda c: c["status"] == "succeeded", "the run succeeds")
    assert done["bar"] == 1
    bar = await page.script(
        """const bar = document.querySelector('.card progress');
           return [bar.value, bar.max, bar.getAttribute('aria-valuetext')]"""
    )
    assert bar == [1, 1, "100%"]
    live = await page.script("return document.querySelector('#announcer').ariaLive")
    assert live == "polite"
