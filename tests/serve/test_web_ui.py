"""The chat page in a real browser (headless Chromium from Debian's ``chromium`` package, driven by Playwright):
send a message, see the answer stream, stop it, reload and find the conversation, hover a token and read its
probability. Nothing may be loaded from the network.

    .venv/bin/pytest tests/serve/test_web_ui.py -q        # needs: apt-get install chromium; pip install playwright
"""

import math
import os
import re
import time

import pytest

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(f"needs Debian's chromium package ({CHROMIUM}; apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (pip install playwright)")
pytest.importorskip("fastapi", reason="fastapi is not installed (the serve extra)")

from serve_fixtures import SlowGPT, make_state, running_server, tiny_model  # noqa: E402

pytestmark = pytest.mark.slow
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except Exception as e:  # a chromium that cannot start here (missing libraries, ...)
            pytest.skip(f"chromium does not start: {str(e).splitlines()[0]}")
        yield b
        b.close()


def wait_until(page, js: str, timeout: float = 20.0) -> None:
    """Poll a JS expression until it is truthy. (Playwright's wait_for_function evaluates its predicate with
    eval, which the page's Content-Security-Policy rightly forbids; page.evaluate goes through the debugger.)"""
    deadline = time.time() + timeout
    while not page.evaluate(js):
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for: {js}")
        time.sleep(0.05)


def assistant_text(page) -> str:
    return page.eval_on_selector_all(".msg.assistant .body", "els => els.length ? els[els.length-1].textContent : ''")


def test_send_stream_stop_reload_hover(browser, serve_tok):
    model = tiny_model(serve_tok.vocab_size, max_seq_len=512, cls=SlowGPT)
    state = make_state(serve_tok, model=model)
    with running_server(state) as url:
        page = browser.new_page()
        outside = []
        page.on("request", lambda r: None if r.url.startswith(url) else outside.append(r.url))
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/")
        wait_until(page, "document.querySelector('#model-info').textContent.includes('tiny')")

        page.fill("#input", "Who says *to be*?")
        page.press("#input", "Enter")
        page.wait_for_selector(".msg.user")
        assert page.text_content(".msg.user") == "Who says *to be*?"
        # It streams: the answer grows while the stop button is shown.
        wait_until(page, "(document.querySelector('.msg.assistant .body') || {}).textContent?.length > 3")
        first = assistant_text(page)
        wait_until(page, f"document.querySelector('.msg.assistant .body').textContent.length > {len(first) + 3}")
        assert page.is_visible("#stop")
        page.click("#stop")
        page.wait_for_selector("#stop", state="hidden")
        stopped = assistant_text(page)
        assert len(stopped) > len(first)
        assert "stopped" in page.text_content(".msg.assistant .meta")
        time.sleep(0.5)
        assert assistant_text(page) == stopped  # nothing arrives after the stop
        deadline = time.time() + 5
        while state.scheduler.counts() != (0, 0) and time.time() < deadline:  # the server dropped the row
            time.sleep(0.05)
        assert state.scheduler.counts() == (0, 0)

        page.reload()
        page.wait_for_selector("#conversations li")
        assert page.text_content("#conversations li .title") == "Who says *to be*?"
        assert page.text_content(".msg.user") == "Who says *to be*?"
        assert assistant_text(page) == stopped

        # Hover a token: its probability and the alternatives, as the server sent them.
        tok0 = page.query_selector(".msg.assistant .tok:visible")  # (a sampled whitespace-only token has no box)
        tok0.hover()
        page.wait_for_selector("#tip:not([hidden])")
        shown = page.text_content("#tip .prob")
        i = int(tok0.get_attribute("data-i"))
        p = page.evaluate(f"JSON.parse(localStorage['llmlab.conversations'])[0].messages[1].tokens[{i}].p")
        assert re.fullmatch(r"\d+\.\d%", shown) and float(shown[:-1]) == pytest.approx(100 * p, abs=0.051)
        assert 0 < p <= 1 and math.isfinite(p)
        assert len(page.query_selector_all("#tip .alt")) == 5
        alts = [float(x[:-1]) for x in page.eval_on_selector_all("#tip .alt-p", "els => els.map(e => e.textContent)")
                if x[0].isdigit()]
        assert alts == sorted(alts, reverse=True)

        # Regenerate replaces the answer (and it streams again); markdown renders as elements, not text.
        page.click("#regenerate")
        page.wait_for_selector("#stop", state="visible")
        page.click("#stop")
        page.wait_for_selector("#regenerate", state="visible")
        assert len(page.query_selector_all(".msg.assistant")) == 1
        assert not errors and not outside
        page.close()


def test_markdown_renders_safely(browser, serve_tok):
    """The page's renderer on hostile text: markup stays text, code blocks and emphasis become elements."""
    state = make_state(serve_tok)
    with running_server(state) as url:
        page = browser.new_page()
        page.goto(url + "/")
        html = page.evaluate("""() => {
            const src = "# Title\\n\\nSome **bold** and *it* and `x<y`.\\n\\n```py\\nprint('<b>')\\n```\\n" +
                        "- one\\n- two\\n\\n<img src=x onerror=alert(1)> [a](javascript:alert(1)) [b](https://e.org)";
            const div = document.createElement('div');
            div.append(LlmMarkdown.render(src, (p, a, b) => p.append(document.createTextNode(src.slice(a, b)))));
            return div.innerHTML;
        }""")
        assert "<h1>Title</h1>" in html and "<strong>bold</strong>" in html and "<em>it</em>" in html
        assert "<code>x&lt;y</code>" in html and "print('&lt;b&gt;')" in html and "<li>one</li>" in html
        assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
        assert 'href="javascript' not in html and 'href="https://e.org"' in html
        page.close()


def test_model_picker_lists_and_uses_the_assistants(browser, serve_tok, tmp_path):
    """The sidebar's picker holds the served run and the saved assistants; a message goes to the one chosen,
    without the page's sampling settings (the assistant's defaults apply), and the choice survives a reload."""
    import json

    from llmlab.tools.assistants import create_assistant

    create_assistant("helper", system="Be brief.", sampling={"max_new_tokens": 5}, home=tmp_path)
    state = make_state(serve_tok, assistants_home=str(tmp_path))
    with running_server(state) as url:
        page = browser.new_page()
        sent = []
        page.on("request", lambda r: sent.append(json.loads(r.post_data)) if r.url.endswith("/chat/completions")
                else None)
        page.goto(url + "/")
        wait_until(page, "document.querySelectorAll('#model-select option').length === 2")
        assert page.eval_on_selector_all("#model-select option", "os => os.map(o => o.value)") == \
            ["tiny", "assistant:helper"]
        page.select_option("#model-select", "assistant:helper")
        assert "assistant:helper" in page.text_content("#model-info")
        page.fill("#input", "Hello")
        page.press("#input", "Enter")
        page.wait_for_selector("#regenerate", state="visible")
        assert sent[-1]["model"] == "assistant:helper" and "temperature" not in sent[-1]
        assert "max_tokens" not in sent[-1] and sent[-1]["logprobs"] is True
        page.reload()
        wait_until(page, "document.querySelector('#model-select').value === 'assistant:helper'")
        page.close()
