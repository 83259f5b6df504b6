#!/usr/bin/python3
"""A real user in a real browser: Debian's Chromium, driven through chromium-driver by Debian's
python3-selenium, against apppw-web behind nginx (tests/tests/web.rs starts them).

  web-browser.py create ORIGIN CERT USER LABEL SERVICE OUTDIR
      signs in, creates an app password for SERVICE, reads it from the page, downloads the Apple
      profile, and saves screenshots of the code page and the list in OUTDIR; prints
      {"code": ..., "profile": PATH} as JSON.
  web-browser.py revoke ORIGIN CERT USER LABEL OUTDIR
      signs in and revokes the app password labelled LABEL with its button; prints
      {"left": [labels still listed]}.

The password comes on stdin, never in argv. The test's certificate CERT is made trusted in a
certificate database of the browser's own (NSS, as Chromium reads it on Linux), so the page is a
secure origin as a real site's is; the site's name maps to 127.0.0.1.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlparse

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def trusting_home(certificate):
    """A home directory whose NSS database trusts `certificate` for TLS servers."""
    home = tempfile.mkdtemp(prefix="apppw-browser-")
    database = "sql:" + os.path.join(home, ".pki", "nssdb")
    os.makedirs(os.path.join(home, ".pki", "nssdb"))
    subprocess.run(["certutil", "-N", "-d", database, "--empty-password"], check=True)
    subprocess.run(["certutil", "-A", "-d", database, "-t", "P,,", "-n", "apppw-test", "-i", certificate],
                   check=True)
    return home


def browser(origin, certificate, downloads):
    host = urlparse(origin).hostname
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--host-resolver-rules=MAP {host} 127.0.0.1",
        "--window-size=1100,800",
    ):
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs",
        # Safe Browsing's download checks would hold a file type Chrome rates risky (a
        # configuration profile) for a confirmation no one can give in a headless browser.
        {"download.default_directory": downloads, "download.prompt_for_download": False,
         "safebrowsing.enabled": False, "download_restrictions": 0},
    )
    environment = dict(os.environ, HOME=trusting_home(certificate))
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver", env=environment), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
    return driver


def wait_for_heading(driver, text):
    """Waits until the page that a click or submit loads has the heading `text`."""
    def heading(d):
        return d.find_element(By.TAG_NAME, "h1").text == text
    try:
        WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException,)).until(heading)
    except TimeoutException:
        sys.exit(f"never reached {text!r}: {driver.current_url} {driver.page_source[:3000]}")


def sign_in(driver, origin, user, password):
    driver.get(origin + "/")
    if "/sign-in" not in driver.current_url:
        sys.exit(f"not sent to the sign-in page: {driver.current_url}")
    driver.find_element(By.ID, "user").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for_heading(driver, "Your app passwords")


def labels(driver):
    return [th.text for th in driver.find_elements(By.CSS_SELECTOR, "tbody th[scope=row]")]


def create(origin, certificate, user, password, label, service, outdir):
    downloads = tempfile.mkdtemp(prefix="apppw-downloads-")
    driver = browser(origin, certificate, downloads)
    try:
        sign_in(driver, origin, user, password)
        driver.find_element(By.LINK_TEXT, "Create an app password").click()
        wait_for_heading(driver, "Create an app password")
        driver.find_element(By.ID, "label").send_keys(label)
        driver.find_element(By.ID, f"service-{service}").click()
        driver.find_element(By.CSS_SELECTOR, "main button[type=submit]").click()
        wait_for_heading(driver, "Your new app password")
        code = driver.find_element(By.CSS_SELECTOR, ".code code").text
        driver.set_window_size(412, 860)
        driver.save_screenshot(os.path.join(outdir, "web-code.png"))
        driver.set_window_size(1100, 800)
        driver.find_element(By.XPATH, "//button[contains(., 'Download a profile')]").click()
        profile = os.path.join(downloads, "mail.mobileconfig")
        deadline = time.time() + 20
        while not os.path.exists(profile):
            if time.time() > deadline:
                sys.exit(f"the profile was not downloaded: {os.listdir(downloads)}")
            time.sleep(0.2)
        driver.find_element(By.LINK_TEXT, "Back to your app passwords").click()
        wait_for_heading(driver, "Your app passwords")
        if label not in labels(driver):
            sys.exit(f"{label!r} is not listed: {labels(driver)}")
        driver.save_screenshot(os.path.join(outdir, "web-list.png"))
        print(json.dumps({"code": code, "profile": profile}))
    finally:
        driver.quit()


def revoke(origin, certificate, user, password, label, outdir):
    driver = browser(origin, certificate, outdir)
    try:
        sign_in(driver, origin, user, password)
        driver.find_element(By.CSS_SELECTOR, f"button[aria-label='Revoke {label}']").click()
        WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda d: label not in labels(d))
        print(json.dumps({"left": labels(driver)}))
    finally:
        driver.quit()


def main():
    password = sys.stdin.readline().rstrip("\n")
    action, origin, certificate, user = sys.argv[1:5]
    if action == "create":
        create(origin, certificate, user, password, *sys.argv[5:8])
    elif action == "revoke":
        revoke(origin, certificate, user, password, *sys.argv[5:7])
    else:
        sys.exit(f"unknown action {action}")


main()
