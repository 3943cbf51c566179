"""report.html in a real browser (Debian's headless Chromium via chromedriver): it renders, the
matrix has one cell per flow, and a click on a cell opens that flow's evidence, culprit and fix.
The screenshot is kept as a test artefact under artifacts/."""
import copy
import json
import os
import shutil

import pytest

from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.run import explain
from ansible_collections.netdiag.reachability.plugins.plugin_utils.report import html_page, markdown, summary_lines
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError

from ..helpers import ROOT, fixture

FIX = fixture("explain", "seeds-facts.json")
ARTIFACTS = os.path.join(ROOT, "artifacts")


@pytest.fixture(scope="module")
def report():
    with open(FIX) as fh:
        facts = json.load(fh)
    rep = explain(copy.deepcopy(facts["flows"]), facts["hosts"])
    # one flow the user expects closed, to see a mismatch frame and an as-expected closed cell
    return rep


def test_markdown_lists_every_flow_and_each_fix(report):
    md = markdown(report)
    for f in report["flows"]:
        assert "| %s/%s |" % (f["port"], f["protocol"]) in md
    assert "firewall-cmd --zone=public --add-port=80/tcp" in md
    assert "## Findings" in md and "nat" in md


def test_summary_lines(report):
    lines = summary_lines(report)
    assert lines[0].startswith("16 flows checked: 4 ok, 12 failed")
    assert any("path_block" in l for l in lines)


def test_not_a_report_is_a_clear_error():
    with pytest.raises(InputError, match="not a netdiag.reachability report"):
        html_page({"flows": []})


def test_html_escapes_rule_text(report):
    page = html_page(report)
    assert page.count("</script>") == 2  # the embedded JSON cannot close its script element


@pytest.fixture(scope="module")
def browser():
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.fail("chromium and chromium-driver are not installed (make setup installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    opts = Options()
    opts.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1600,1000"):
        opts.add_argument(arg)
    drv = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        yield drv
    finally:
        drv.quit()


def test_the_page_renders_one_cell_per_flow_and_a_click_shows_the_details(report, browser, tmp_path):
    from selenium.webdriver.common.by import By
    page = tmp_path / "report.html"
    page.write_text(html_page(report))
    browser.get("file://%s" % page)
    assert browser.title == "Reachability report"
    cells = browser.find_elements(By.CSS_SELECTOR, "td.cell")
    assert len(cells) == len(report["flows"])
    details = browser.find_element(By.ID, "details")
    assert not details.is_displayed()
    # click the firewalld cell (seed 002): the details name the cause, the rule and the fix
    idx = next(i for i, f in enumerate(report["flows"]) if f["address"] == "10.200.2.11" and f["port"] == 80)
    cell = browser.find_element(By.CSS_SELECTOR, 'td.cell[data-flow="%d"]' % idx)
    assert "firewall" in cell.get_attribute("class")
    cell.click()
    assert details.is_displayed()
    assert details.find_element(By.CSS_SELECTOR, ".cause").text == "host_firewall"
    assert "firewall-cmd --zone=public --add-port=80/tcp" in details.text
    assert "admin-prohibited" in details.find_element(By.CSS_SELECTOR, ".culprit").text
    # another cell replaces the details
    idx2 = next(i for i, f in enumerate(report["flows"]) if f["cause"] == "nat")
    browser.find_element(By.CSS_SELECTOR, 'td.cell[data-flow="%d"]' % idx2).click()
    assert details.find_element(By.CSS_SELECTOR, ".cause").text == "nat"
    os.makedirs(ARTIFACTS, exist_ok=True)
    browser.save_screenshot(os.path.join(ARTIFACTS, "report-html.png"))
    assert os.path.getsize(os.path.join(ARTIFACTS, "report-html.png")) > 10000


def test_the_details_show_the_alternative_fixes_with_their_commands(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from .test_explain_ipset import with_ipset_zone
    with open(FIX) as fh:
        facts = json.load(fh)
    rep = explain(copy.deepcopy(facts["flows"]), with_ipset_zone(facts))
    idx = next(i for i, f in enumerate(rep["flows"]) if f["address"] == "10.200.2.11" and f["port"] == 80)
    page = tmp_path / "report.html"
    page.write_text(html_page(rep))
    browser.get("file://%s" % page)
    browser.find_element(By.CSS_SELECTOR, 'td.cell[data-flow="%d"]' % idx).click()
    details = browser.find_element(By.ID, "details")
    assert "rich rule in firewalld zone internal" in details.find_element(By.CSS_SELECTOR, ".fix").text
    alts = details.find_elements(By.CSS_SELECTOR, "ul.alternatives > li")
    assert len(alts) == 2, details.text
    assert "open 80/tcp in firewalld zone internal" in alts[0].text
    assert "firewall-cmd --permanent --zone=internal --add-port=80/tcp" in alts[0].text
    assert "remove 10.200.1.0/24 from ipset admins" in alts[1].text and "(manual)" in alts[1].text
    # a flow without alternatives shows none
    other = next(i for i, f in enumerate(rep["flows"]) if f["cause"] == "nat")
    browser.find_element(By.CSS_SELECTOR, 'td.cell[data-flow="%d"]' % other).click()
    assert not details.find_elements(By.CSS_SELECTOR, "ul.alternatives")
