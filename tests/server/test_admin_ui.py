"""The operator page's files as the server sends them (the page itself: test_admin_browser.py)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from dari.server.ui import STATIC


def test_the_operator_page_is_served_with_the_strict_policy(client: TestClient):
    page = client.get("/admin")  # the page itself holds no data: the API asks for the key
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/ui/admin.js">' in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe" not in csp
    assert client.get("/ui/admin.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/ui/admin.css").headers["content-type"].startswith("text/css")
    assert "/admin" not in client.get("/openapi.json").json()["paths"]


def test_values_are_only_ever_inserted_as_text():
    script = (STATIC / "admin.js").read_text(encoding="utf-8")
    for markup in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert markup not in script, markup
    assert "XMLHttpRequest" in script and 'upload.addEventListener("progress"' in script


def test_every_operator_string_exists_in_english_and_korean():
    script = (STATIC / "admin.js").read_text(encoding="utf-8")
    page = (STATIC / "admin.html").read_text(encoding="utf-8")
    en, ko = script.split("\n  ko: {\n")
    en = en.split("\n  en: {\n")[1]
    ko = ko.split("\n};\n")[0]
    keys = set(re.findall(r'data-i18n(?:-placeholder)?="(\w+)"', page))
    keys |= {k for pair in re.findall(r'\bt\("(\w+)"\)|i18n: "(\w+)"', script) for k in pair}
    keys.discard("")
    assert len(keys) > 60
    for key in sorted(keys):
        assert re.search(rf"\b{key}:", en), f"'{key}' has no English text"
        assert re.search(rf"\b{key}:", ko), f"'{key}' has no Korean text"
    words = ko.split("words: {")[1]
    shown = set(re.findall(r'data-word="(\w+)"', page))
    assert shown == {"answered", "abstained", "blocked"}
    for value in shown | {"running", "done", "failed", "added", "updated", "unchanged"}:
        assert re.search(rf"\b{value}:", words), f"the API word '{value}' has no Korean text"
