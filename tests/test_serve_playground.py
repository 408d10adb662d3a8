"""The playground in a real headless browser (Debian's chromium driven by selenium): load the
page, run a query in the compare view, check each column's top hit, keep a screenshot."""

from __future__ import annotations

import os
import shutil

import pytest
from serve_support import CORPUS, cleanup, free_port, running_server, unique_name

from essearch.serve import create_app
from essearch.settings import Settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def browser():
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        message = "chromium and chromedriver are needed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)  # .ci/run installs them; never skip in CI
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=1500,1000")
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def server(es_url, es_client, local_embedder):
    alias = unique_name("playground")
    settings = Settings(es={"url": es_url}, index={"name": alias, "replicas": 0})
    app = create_app(settings, embedder=local_embedder)
    try:
        with running_server(app, free_port()) as base:
            import httpx

            report = httpx.post(
                f"{base}/v1/indices/{alias}/documents", json={"documents": CORPUS}, timeout=120
            ).json()
            assert report["indexed"] == len(CORPUS), report
            yield base, alias
    finally:
        cleanup(es_client, alias)


def top_hits(driver):
    return {
        mode: driver.find_element("css selector", f"#col-{mode} .hit").get_attribute("data-doc")
        for mode in ("bm25", "knn", "hybrid")
    }


def compare_and_wait(driver, wait):
    """Click Compare and wait until the page says this search finished (`data-runs` grows)."""
    results = driver.find_element("id", "results")
    before = int(results.get_attribute("data-runs") or 0)
    driver.find_element("id", "compare").click()
    wait.until(
        lambda d: int(d.find_element("id", "results").get_attribute("data-runs") or 0) > before
    )


def test_compare_view_shows_each_leg_and_its_top_hit(server, tmp_path):
    from selenium.webdriver.support.ui import Select, WebDriverWait

    base, alias = server
    driver = browser()
    try:
        wait = WebDriverWait(driver, 60)
        driver.get(base + "/")
        wait.until(
            lambda d: alias in [o.text for o in Select(d.find_element("id", "index")).options]
        )
        Select(driver.find_element("id", "index")).select_by_visible_text(alias)
        driver.find_element("id", "query").send_keys("cats napping on the sofa")
        compare_and_wait(driver, wait)
        assert top_hits(driver) == {"bm25": "d4", "knn": "d4", "hybrid": "d4"}
        hybrid_top = driver.find_element("css selector", "#col-hybrid .hit")
        assert "bm25 #1" in hybrid_top.find_element("css selector", ".legs").text
        assert "knn #1" in hybrid_top.find_element("css selector", ".legs").text
        marked = driver.find_elements("css selector", "#col-bm25 .hit .snippet em")
        assert {"cats", "sofa"} <= {m.text.lower() for m in marked}
        driver.find_element("css selector", "#col-knn details summary").click()
        sent = driver.find_element("css selector", "#col-knn details").text
        assert '"knn"' in sent and "dims]" in sent  # the ES request, vector shortened
        driver.save_screenshot(str(tmp_path / "playground-compare.png"))

        # a filter narrows every leg, kNN as a pre-filter: only the (lexically unrelated) kitten
        # remains, so BM25 finds nothing while kNN and hybrid still rank it first
        driver.find_element("id", "add-filter").click()
        row = driver.find_element("css selector", "#filters .filter")
        row.find_element("css selector", ".f-field").send_keys("lang")
        Select(row.find_element("css selector", ".f-op")).select_by_value("eq")
        row.find_element("css selector", ".f-value").send_keys("zh")
        compare_and_wait(driver, wait)
        assert driver.find_elements("css selector", "#col-bm25 .hit") == []
        assert "no hits" in driver.find_element("id", "col-bm25").text
        first = {
            m: driver.find_element("css selector", f"#col-{m} .hit") for m in ("knn", "hybrid")
        }
        assert {m: e.get_attribute("data-doc") for m, e in first.items()} == {
            "knn": "d5",
            "hybrid": "d5",
        }
        driver.save_screenshot(str(tmp_path / "playground-filtered.png"))
    finally:
        driver.quit()
    assert (tmp_path / "playground-compare.png").stat().st_size > 10_000
