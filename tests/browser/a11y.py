"""axe-core (npm, node_modules/axe-core: scripts/ensure-node.sh) run in a page."""

from playwright.sync_api import Page

from tests.live import ROOT

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.0, 2.1 and 2.2 at levels A and AA.
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
RUN = """
async (tags) => {
  const result = await axe.run(document, { runOnly: { type: "tag", values: tags } });
  return result.violations.map((v) => ({
    id: v.id,
    help: v.help,
    nodes: v.nodes.map((n) => `${n.target.join(" ")}: ${n.failureSummary}`),
  }));
}
"""


def axe_violations(page: Page) -> list[dict]:
    """The WCAG 2.2 AA violations axe finds in the page as it is now.

    axe goes in as an inline script: the page's context must be made with
    `bypass_csp=True`, since the app's CSP (rightly) refuses inline scripts.
    """
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    return page.evaluate(RUN, TAGS)


def assert_accessible(page: Page, state: str) -> None:
    violations = axe_violations(page)
    assert violations == [], f"{state}: " + "\n".join(
        f"{v['id']} ({v['help']}):\n  " + "\n  ".join(v["nodes"]) for v in violations
    )
