"""Result tables at common laptop and desktop widths: every table fits inside its card (or scrolls
inside it), and no cell is cut off."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.chromium import chromium
from tests.browser.test_results_pages import Page
from tests.integration.pages import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Every table in the page's main column: the table's box must lie inside its wrapper and the
# wrapper inside the main column; a wrapper wider than its box would hide columns behind a
# scrollbar; a cell whose content is wider than the cell is cut off.
CLIPPED = """() => {
  const problems = [];
  const main = document.querySelector('main').getBoundingClientRect();
  for (const table of document.querySelectorAll('main table')) {
    const name = table.id || table.className || 'table';
    const wrap = table.closest('.table-wrap') || table.parentElement;
    const box = wrap.getBoundingClientRect();
    if (wrap.scrollWidth > wrap.clientWidth + 1) {
      problems.push(`${name}: ${wrap.scrollWidth - wrap.clientWidth}px hidden to the right`);
    }
    if (box.right > main.right + 1 || box.left < main.left - 1) {
      problems.push(`${name}: its box leaves the page's column`);
    }
    for (const cell of table.querySelectorAll('th, td')) {
      if (cell.scrollWidth > cell.clientWidth + 1) {
        problems.push(`${name}: cell "${cell.innerText.trim().slice(0, 30)}" is cut off`);
      }
      const r = cell.getBoundingClientRect();
      if (r.width > 0 && r.right > box.right + 1) {
        problems.push(`${name}: cell "${cell.innerText.trim().slice(0, 30)}" lies outside the visible table`);
      }
    }
  }
  return problems;
}"""


@pytest.fixture
def launched(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    with chromium(monkeypatch) as browser:
        yield browser, live_server.url


@pytest.mark.parametrize("width", [1280, 1400])
def test_browser__result_tables__fit_their_cards_with_nothing_clipped(launched: tuple[Any, str], width: int) -> None:
    browser, base = launched
    # A corrected analysis adds the "p adjusted" column: the widest table of a two-arm experiment.
    winner = factories.seed(factories.winner_plan(extra={"correction": "holm"}))
    factories.seed(factories.guardrail_plan())
    factories.staff_user("analyst")
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = Page(context.new_page(), base)
    page.login("analyst")

    for path in ("/experiments/", f"/experiments/{winner.key}/", f"/experiments/{winner.key}/?diff=absolute",
                 f"/experiments/{winner.key}/?analysis=fixed&cuped=off&slice=platform"):
        page.go(path)
        assert page.page.locator("main table").count() >= 1, path
        assert page.page.evaluate(CLIPPED) == [], (width, path)
    assert page.errors == []
    context.close()
