"""The chat page at / in a real headless browser (Debian's chromium and chromium-driver, Selenium
from PyPI): send a message, see a streamed answer and tokens/s, send another (the conversation is
kept)."""
import pathlib

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import ServerProcess

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"


def test_chat_page_streams_answers():
    assert pathlib.Path(CHROMEDRIVER).exists(), "install chromium-driver (scripts/install-deps.sh)"
    server = ServerProcess("--parallel", "2", "--ctx-size", "1024")  # no key: a browser opens it
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(server.base_url + "/")
        wait = WebDriverWait(driver, 120)
        wait.until(lambda d: "loading" not in d.find_element(By.ID, "model").text
                   and d.find_element(By.ID, "model").text)
        for field, value in (("temperature", "0"), ("max_tokens", "8")):
            element = driver.find_element(By.ID, field)
            element.clear()
            element.send_keys(value)
        for turn, question in enumerate(["What is the capital of France?", "And of Spain?"]):
            driver.find_element(By.ID, "prompt").send_keys(question)
            driver.find_element(By.ID, "send").click()
            wait.until(lambda d: len(d.find_elements(
                By.CSS_SELECTOR, ".msg.assistant[data-done='1'], .msg.error[data-done='1']"))
                == turn + 1)
            answers = driver.find_elements(By.CSS_SELECTOR, ".msg.assistant")
            assert len(answers) == turn + 1, driver.find_element(By.ID, "messages").text
            assert answers[-1].text.strip()
            assert "tokens/s" in driver.find_element(By.ID, "stats").text
        assert len(driver.find_elements(By.CSS_SELECTOR, ".msg.user")) == 2
    finally:
        driver.quit()
        assert server.stop() == 0
