"""Loads pages in headless Chromium (Debian's, driven by Playwright) and
prints, as JSON, every Content-Security-Policy violation each page caused:
the `securitypolicyviolation` events and the console errors that name the
policy. Usage: CHROMIUM_FLAGS="--no-sandbox ..." python3 csp_check.py URL...
(tests/browser.rs passes the flags it runs Chromium with)."""

import json
import os
import sys

from playwright.sync_api import sync_playwright

RECORD = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__violations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline'));
});
"""

def main(urls):
    out = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=os.environ.get("CHROMIUM_FLAGS", "").split(),
        )
        for url in urls:
            page = browser.new_page()
            console = []
            page.on(
                "console",
                lambda m: console.append(m.text)
                if "Content Security Policy" in m.text
                else None,
            )
            page.add_init_script(RECORD)
            page.goto(url, wait_until="load")
            events = page.evaluate("window.__violations || []")
            out[url] = events + console
            page.close()
        browser.close()
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1:])
