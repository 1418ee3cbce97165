"""The web page of `pricer serve` in a real headless chromium (Debian's chromium and chromedriver, driven by
selenium): one product with its verdict and nearest known products, a file priced into a table and a download, the
deal list, all behind an API key. Set PRICER_SCREENSHOT=docs/page.png to keep the screenshot the README shows."""

import os
import re
import shutil

import httpx
import pytest

import pricer

from conftest import pricer_serve
from pricer.data.items import read_items
from pricer.retrieval.index import PriceIndex

KEY = "sk-page-test"


def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver):
        pytest.fail("the page test needs Debian's chromium and chromium-driver: `make browser` installs them")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-extensions", "--window-size=1280,1600"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


@pytest.fixture(scope="module")
def served(amazon, tmp_path_factory):
    """The real `pricer serve` with an index and the 153 real offers as its deals, behind an API key."""
    tmp = tmp_path_factory.mktemp("page")
    items = read_items(amazon / "train.jsonl")
    pricer.fit("tfidf", items).save(tmp / "tfidf")  # with its 80% interval, calibrated out of fold
    PriceIndex.build(items[:200]).save(tmp / "index")
    with pricer_serve("--model", tmp / "tfidf", "--index", tmp / "index", "--deals",
                      amazon.parent / "deals" / "offers.jsonl", env={"PRICER_API_KEY": KEY}) as url:
        yield url, tmp


@pytest.mark.slow
def test_the_page_in_a_real_browser(served, amazon, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = served
    products = read_items(f"{amazon / 'dev.jsonl'}[:6]")
    upload = tmp_path / "products.csv"
    upload.write_text("title,description,price\n" + "".join(
        f'"{p.title.replace(chr(34), "")}","{p.text[:200].replace(chr(34), "")}",{p.price:.2f}\n' for p in products)
        + "=SUM(A1:A2),a desk lamp whose title a spreadsheet would run,12.00\n")
    browser = chromium()
    try:
        wait = WebDriverWait(browser, 60)
        browser.get(url)
        key = browser.find_element(By.ID, "key")
        wait.until(lambda b: key.is_displayed())  # the service wants a key: the page asks for it

        browser.find_element(By.ID, "title").send_keys("Moen single-handle bathroom faucet, brushed nickel")
        browser.find_element(By.ID, "description").send_keys("Pop-up drain included, 1.2 gpm, ceramic cartridge")
        browser.find_element(By.ID, "offer").send_keys("forty")
        browser.find_element(By.ID, "estimate-btn").click()
        wait.until(lambda b: b.find_element(By.ID, "estimate-error").text)
        assert "must be a number" in browser.find_element(By.ID, "estimate-error").text  # refused before any request
        browser.find_element(By.ID, "offer").clear()
        browser.find_element(By.ID, "offer").send_keys("39.99")
        browser.find_element(By.ID, "estimate-btn").click()
        wait.until(lambda b: "401" in b.find_element(By.ID, "estimate-error").text)  # no key yet: refused, and said so

        assert "wants its API key" in browser.find_element(By.ID, "model").text  # /health says no more than that
        key.send_keys(KEY)
        browser.execute_script("document.getElementById('key').dispatchEvent(new Event('change'))")
        wait.until(lambda b: "model tfidf (tfidf)" in b.find_element(By.ID, "model").text)  # from /v1/status, keyed
        browser.find_element(By.ID, "estimate-btn").click()
        wait.until(lambda b: b.find_element(By.ID, "estimate").text.startswith("$"))
        estimate = float(browser.find_element(By.ID, "estimate").text.strip("$").replace(",", ""))
        assert 1 < estimate < 5000 and browser.find_element(By.ID, "estimate-error").text == ""

        browser.execute_script("document.getElementById('key').value = 'wrong'; "
                               "document.getElementById('key').dispatchEvent(new Event('change'))")
        browser.find_element(By.ID, "estimate-btn").click()
        wait.until(lambda b: "401" in b.find_element(By.ID, "estimate-error").text)
        assert not browser.find_element(By.ID, "result").is_displayed()  # the old estimate does not stand beside it
        browser.execute_script(f"document.getElementById('key').value = '{KEY}'; "
                               "document.getElementById('key').dispatchEvent(new Event('change'))")
        browser.find_element(By.ID, "estimate-btn").click()
        wait.until(lambda b: b.find_element(By.ID, "result").is_displayed())
        assert re.fullmatch(r"80% range \$[\d,.]+ – \$[\d,.]+", browser.find_element(By.ID, "interval").text)
        verdict = browser.find_element(By.ID, "verdict").text
        assert any(word in verdict for word in ("good deal", "fair price", "overpriced")) and "80% range" in verdict
        neighbours = browser.find_elements(By.CSS_SELECTOR, "#neighbours tbody tr")
        assert len(neighbours) == 5 and all("$" in row.text for row in neighbours)

        browser.find_element(By.ID, "file").send_keys(str(upload))
        browser.find_element(By.ID, "batch-btn").click()
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#batch tbody tr")) == 7)
        first_row = browser.find_elements(By.CSS_SELECTOR, "#batch tbody tr")[0].text
        assert products[0].title[:20] in first_row and f"${products[0].price:,.2f}" in first_row
        link = browser.find_element(By.ID, "download")
        assert link.get_attribute("download") == "products-priced.csv" and link.get_attribute("href").startswith("blob:")
        csv_text = browser.execute_async_script(
            "const done = arguments[0]; fetch(document.getElementById('download').href).then(r => r.text()).then(done);")
        lines = csv_text.strip().splitlines()
        assert lines[0] == "title,offer,estimate,low,high,discount,saving,verdict" and len(lines) == 8
        assert lines[-1].startswith("'=SUM(A1:A2),12,")  # a formula's cell escaped (OWASP's CSV injection advice)

        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#deals tbody tr a")) > 0)
        assert "148 offers from 1 source" in browser.find_element(By.ID, "deals-summary").text
        deals = browser.find_elements(By.CSS_SELECTOR, "#deals tbody tr a")
        assert deals[0].get_attribute("href").startswith("https://www.dealnews.com/")

        browser.save_screenshot(str(tmp_path / "page.png"))
        if os.environ.get("PRICER_SCREENSHOT"):
            shutil.copy(tmp_path / "page.png", os.environ["PRICER_SCREENSHOT"])
    finally:
        browser.quit()


def test_page_endpoints_refuse_bad_files(served):
    url, _ = served
    auth = {"Authorization": f"Bearer {KEY}"}
    wrong = httpx.post(f"{url}/v1/price/file?name=products.txt", content=b"x", headers=auth)
    assert wrong.status_code == 422 and ".csv, .jsonl or .json" in wrong.json()["detail"]
    broken = httpx.post(f"{url}/v1/price/file?name=p.jsonl", content=b'{"title": "a"}\n{oops\n', headers=auth)
    assert broken.status_code == 422 and "p.jsonl line 2: not JSON" in broken.json()["detail"]
    empty = httpx.post(f"{url}/v1/estimate", json={"title": " "}, headers=auth)
    assert empty.status_code == 422
    priced = httpx.post(f"{url}/v1/price/file?name=p.csv&format=csv", content=b"title,price\nDesk lamp,20\n", headers=auth)
    assert priced.status_code == 200 and priced.headers["content-disposition"] == 'attachment; filename="p-priced.csv"'
    assert priced.text.splitlines()[1].startswith("Desk lamp,20.0,")
    assert httpx.get(f"{url}/").status_code == 200 and httpx.get(f"{url}/v1/deals").status_code == 401
