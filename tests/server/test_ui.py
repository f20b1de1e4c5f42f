"""The chat page's files as the server sends them (the page itself: test_ui_browser.py)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from dari.server.ui import STATIC


def test_the_page_and_its_files_are_served_from_this_origin_only(client: TestClient):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/ui/app.js">' in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    script = client.get("/ui/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert client.get("/ui/app.css").headers["content-type"].startswith("text/css")
    assert "/" not in client.get("/openapi.json").json()["paths"]


def test_only_shipped_files_are_served(client: TestClient):
    for path in ("/ui/nope.js", "/ui/.hidden.css", "/ui/..%2Fui.py", "/ui/ui.py", "/ui/"):
        assert client.get(path).status_code == 404, path


def test_nothing_comes_from_the_network_and_model_text_is_never_markup():
    for f in STATIC.iterdir():
        text = f.read_text(encoding="utf-8")
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text), f.name
    script = (STATIC / "app.js").read_text(encoding="utf-8")
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script


def test_every_ui_string_exists_in_english_and_korean():
    script = (STATIC / "app.js").read_text(encoding="utf-8")
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    en, ko = script.split("\n  ko: {\n")
    en = en.split("\n  en: {\n")[1]
    ko = ko.split("\n};\n")[0]
    keys = set(re.findall(r'data-i18n(?:-placeholder|-label)?="(\w+)"', page))
    keys |= {k for pair in re.findall(r'\bt\("(\w+)"\)|i18n: "(\w+)"', script) for k in pair}
    keys |= {"up", "down", "copy", "regenerate", "blocked", "abstained"}  # passed as variables
    keys.discard("")
    assert len(keys) > 20
    for key in sorted(keys):
        assert re.search(rf"\b{key}:", en), f"'{key}' has no English text"
        assert re.search(rf"\b{key}:", ko), f"'{key}' has no Korean text"
