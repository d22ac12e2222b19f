#!/usr/bin/env python3
"""The Playwright side of the browser-crawl comparison (docs/benchmarks.md).

Loads the same fixture pages `markwatch bench browser` loads, in Debian's Chromium driven by
Playwright for Python, with N tabs of one logged-in context, and for each page keeps what
markwatch keeps: the rendered DOM and every API reply whose URL matches --capture, waiting for
one that succeeded. Prints one JSON line: pages, seconds, pages/s, captures and items read.

  pip install playwright      # the package only: its own browser download is not used
  playwright_pages.py --urls urls.txt --cookies cookies.json --tabs 4 \\
      --capture 'mtop\\.relationrecommend' --success SUCCESS
"""
import argparse
import asyncio
import json
import re
import time

from playwright.async_api import async_playwright

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def items_in(body):
    """Counts listings in an mtop-style JSONP reply, as markwatch's extractor reads them."""
    start, end = body.find("("), body.rfind(")")
    try:
        data = json.loads(body[start + 1:end] if start >= 0 else body)
        return len(data.get("data", {}).get("itemsArray", []))
    except ValueError:
        return 0


async def worker(context, queue, opts, totals):
    page = await context.new_page()
    capture = re.compile(opts.capture) if opts.capture else None
    while True:
        try:
            url = queue.get_nowait()
        except asyncio.QueueEmpty:
            break
        done = asyncio.Event()
        bodies = []

        async def on_response(response):
            if capture and capture.search(response.url):
                text = await response.text()
                bodies.append(text)
                if opts.success in text:
                    done.set()

        page.on("response", on_response)
        await page.goto(url, wait_until="load", timeout=opts.timeout * 1000)
        if capture:
            await asyncio.wait_for(done.wait(), opts.timeout)
        else:
            await page.wait_for_load_state("networkidle")
        html = await page.content()
        page.remove_listener("response", on_response)
        totals["pages"] += 1
        totals["dom_bytes"] += len(html)
        totals["captures"] += len(bodies)
        totals["items"] += sum(items_in(b) for b in bodies)
    await page.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--urls", required=True)
    p.add_argument("--cookies", required=True, help="JSON list of {name, value, url}")
    p.add_argument("--tabs", type=int, default=1)
    p.add_argument("--capture", default="")
    p.add_argument("--success", default="SUCCESS")
    p.add_argument("--user-agent", default=None)
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--block", default="", help="resource types to abort, e.g. image,font,media")
    p.add_argument("--timeout", type=float, default=30)
    opts = p.parse_args()
    urls = [u.strip() for u in open(opts.urls) if u.strip()]
    cookies = json.load(open(opts.cookies))
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=opts.chromium, args=ARGS)
        context = await browser.new_context(user_agent=opts.user_agent)
        await context.add_cookies(cookies)
        blocked = set(filter(None, opts.block.split(",")))
        if blocked:
            async def route(r):
                if r.request.resource_type in blocked:
                    await r.abort()
                else:
                    await r.continue_()
            await context.route("**/*", route)
        queue = asyncio.Queue()
        for u in urls:
            queue.put_nowait(u)
        totals = {"pages": 0, "dom_bytes": 0, "captures": 0, "items": 0}
        start = time.monotonic()
        await asyncio.gather(*(worker(context, queue, opts, totals) for _ in range(opts.tabs)))
        secs = time.monotonic() - start
        await browser.close()
    totals.update(tabs=opts.tabs, seconds=round(secs, 3),
                  pages_per_s=round(totals["pages"] / secs, 2))
    print(json.dumps(totals))


if __name__ == "__main__":
    asyncio.run(main())
