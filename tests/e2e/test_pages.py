"""The server-rendered pages in a real browser (Debian's Chromium under
Playwright): sign-up, verification, both ways of signing in, password reset,
the CSRF refusal, the pages without
JavaScript and by keyboard alone, and the admin console. Each journey runs
in a fresh browser context; every page it visits is checked with axe-core
and photographed at 390 px and 1280 px, and no journey may trip the CSP."""

import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from browser import journey
from conftest import SECRETS_SEEN, login
from harness import ADMIN_TOKEN, Worker, problem, unique_email
from test_page_defences import PASSWORD, account, query_of

REFUSAL = "This form could not be accepted"

LANDING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>The app</title></head>
<body><main><h1>The app</h1><p>Back from signing in.</p></main></body></html>"""

CROSS_SITE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Another site</title></head>
<body><main><h1>Another site</h1>
<form id="cross" method="post" action="{action}">
<label>Email <input name="email" type="email"></label>
<label>Password <input name="password" type="password"></label>
<input type="hidden" name="via" value="password">
<button type="submit" id="go">Sign in</button>
</form></main></body></html>"""


class Site:
    """The calling app's stand-in: another origin on 127.0.0.1. Any GET gets
    a small page; /cross-site a form that posts to the worker's sign-in."""

    def __init__(self):
        self.worker_url = None
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if urlsplit(self.path).path == "/cross-site":
                    body = CROSS_SITE.format(action=f"{site.worker_url}/auth/sign-in")
                else:
                    body = LANDING
                payload = body.encode()
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def site():
    s = Site()
    yield s
    s.close()


@pytest.fixture(scope="module")
def pages(mail, site):
    w = Worker("pages", mail=mail, vars={"RESEND_COOLDOWN_SECONDS": "0",
                                         "MAX_SENDS_PER_HOUR": "1000", "OTP_MAX_ATTEMPTS": "3"})
    site.worker_url = w.url
    yield w
    w.stop()


def auth(key):
    return {"authorization": f"Bearer {key}"}


# Steps ---------------------------------------------------------------------------

def at(page, w, path):
    """Waits until the page is `path` of the worker (any query); returns the query."""
    expect(page).to_have_url(re.compile("^" + re.escape(w.url + path) + r"(\?.*)?$"))
    return query_of(page.url)


def press(page, button):
    """Clicks a submit button; returns the status of the POST it sent."""
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        button.click()
    page.wait_for_load_state()
    return answer.value.status


def enter(page):
    """Presses Enter in a form; returns the status of the POST it sent."""
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.keyboard.press("Enter")
    page.wait_for_load_state()
    return answer.value.status


def notice(page):
    return page.locator("#notice[role=status]")


def error(page):
    return page.locator("#error[role=alert]")


def open_sign_up(j, w, email, prefix=""):
    """The sign-up form, filled and sent: lands on the verify page."""
    page = j.page
    page.goto(w.url + "/auth/sign-up")
    j.look(prefix + "sign-up")
    form = page.locator("form#sign-up")
    expect(form.locator("input[name=email]")).to_have_attribute("autocomplete", "email")
    expect(form.locator("input[name=password]")).to_have_attribute("autocomplete", "new-password")
    form.locator("input[name=email]").fill(email)
    form.locator("input[name=password]").fill(PASSWORD)
    SECRETS_SEEN.append(PASSWORD)
    assert press(page, form.get_by_role("button", name="Create account")) == 303
    at(page, w, "/auth/verify")
    expect(notice(page)).to_contain_text(f"We sent a code to {email}.")
    expect(page.locator("form#verify input[name=email]")).to_have_value(email)
    j.look(prefix + "verify")


def verify(j, w, mail, email, prefix=""):
    """The emailed code on the verify page, in the browser that signed up:
    signed in, it lands on the account page."""
    page = j.page
    code = mail.code(email)
    SECRETS_SEEN.append(code)
    field = page.locator("form#verify input[name=code]")
    expect(field).to_have_attribute("autocomplete", "one-time-code")
    expect(field).to_have_attribute("inputmode", "numeric")
    field.fill(code)
    assert press(page, page.locator("form#verify").get_by_role("button", name="Verify")) == 303
    at(page, w, "/auth/account")
    expect(page.locator("#account-email")).to_have_text(email)
    j.look(prefix + "account-after-verify")


def sign_in(j, w, email, password=PASSWORD):
    """The sign-in form (already open), by password: lands on the account page."""
    page = j.page
    form = page.locator("form#sign-in")
    form.locator("input[name=email]").fill(email)
    form.locator("input[name=password]").fill(password)
    assert press(page, form.get_by_role("button", name="Sign in", exact=True)) == 303
    at(page, w, "/auth/account")
    expect(page.locator("#account-email")).to_have_text(email)


# End users -----------------------------------------------------------------------

def test_sign_up_verify_sign_in_and_sign_out(pages, mail, browser):
    """The whole life of a browser session, and /auth/account closed after it."""
    email = unique_email("journey")
    with journey(browser) as j:
        page = j.page
        open_sign_up(j, pages, email)
        verify(j, pages, mail, email)
        assert press(page, page.locator("form#sign-out").get_by_role("button", name="Sign out")) == 303
        at(page, pages, "/auth/sign-in")
        sign_in(j, pages, email)
        j.look("account")
        assert press(page, page.locator("form#sign-out").get_by_role("button", name="Sign out")) == 303
        assert at(page, pages, "/auth/sign-in")["notice"] == "signed_out"
        expect(notice(page)).to_be_visible()
        j.look("sign-in-signed-out")
        page.goto(pages.url + "/auth/account")
        at(page, pages, "/auth/sign-in")


def test_a_sign_in_before_verifying_mails_a_code_and_a_contested_sign_up_asks_for_a_password(pages, mail, browser):
    """Signing in before verifying answers as a wrong password does, and
    says a new code was mailed. A sign-up whose only code is a squatter's
    verifies the address with no password: the page sends the person to
    choose one."""
    email = unique_email("unverified")
    with journey(browser) as j:
        page = j.page
        open_sign_up(j, pages, email, prefix="unverified-")
        page.goto(pages.url + "/auth/sign-in")
        form = page.locator("form#sign-in")
        form.locator("input[name=email]").fill(email)
        form.locator("input[name=password]").fill(PASSWORD)
        assert press(page, form.get_by_role("button", name="Sign in", exact=True)) == 401
        expect(error(page)).to_contain_text("If you signed up and have not verified your address yet, "
                                            "we have emailed you a new code")
        j.look("sign-in-unverified")
        mail.wait_for(email, 2)  # the fresh code, after the answer
        page.get_by_role("link", name="Verify your email").click()
        at(page, pages, "/auth/verify")
        verify(j, pages, mail, email, prefix="unverified-")

    victim = unique_email("contested")
    assert pages.register(victim, "the squatter's pw").status_code == 202
    with journey(browser) as j:
        page = j.page
        open_sign_up(j, pages, victim, prefix="contested-")
        code = mail.code(victim, index=0)  # the only code: the squatter's sign-up's
        SECRETS_SEEN.append(code)
        page.locator("form#verify input[name=code]").fill(code)
        assert press(page, page.locator("form#verify").get_by_role("button", name="Verify")) == 303
        assert at(page, pages, "/auth/forgot")["notice"] == "verified_without_password"
        expect(notice(page)).to_contain_text("we kept no password")
        j.look("forgot-verified-without-password")
    problem(pages.login(victim, "the squatter's pw"), 401, "invalid_credentials")


def test_sign_in_by_an_emailed_code(pages, mail, browser):
    """"Email me a code" needs no password; the code page signs the browser in."""
    email = account(pages, mail)
    with journey(browser) as j:
        page = j.page
        page.goto(pages.url + "/auth/sign-in")
        j.look("sign-in")
        form = page.locator("form#sign-in")
        expect(form.locator("input[name=password]")).to_have_attribute("autocomplete", "current-password")
        form.locator("input[name=email]").fill(email)
        assert press(page, form.get_by_role("button", name="Email me a code")) == 303
        at(page, pages, "/auth/code")
        expect(notice(page)).to_contain_text(f"If {email} has an account, we sent it a code.")
        expect(page.locator("form#code-form input[name=email]")).to_have_value(email)
        j.look("code")
        mail.wait_for(email, 2)
        code = mail.code(email, index=1)
        SECRETS_SEEN.append(code)
        field = page.locator("form#code-form input[name=code]")
        expect(field).to_have_attribute("autocomplete", "one-time-code")
        field.fill(code)
        assert press(page, page.locator("form#code-form").get_by_role("button", name="Sign in")) == 303
        at(page, pages, "/auth/account")
        expect(page.locator("#account-email")).to_have_text(email)


def test_a_password_reset_ends_every_session(pages, mail, browser):
    """Forgot → reset: the API token made before and another browser's
    session are both gone; the old password is refused, the new one works."""
    email = account(pages, mail)
    token = login(pages, email, PASSWORD, SECRETS_SEEN)
    new_password = "a fresh passphrase 42"
    SECRETS_SEEN.append(new_password)
    with journey(browser) as other:
        other.page.goto(pages.url + "/auth/sign-in")
        sign_in(other, pages, email)
        with journey(browser) as j:
            page = j.page
            page.goto(pages.url + "/auth/sign-in")
            page.get_by_role("link", name="Forgot your password?").click()
            at(page, pages, "/auth/forgot")
            j.look("forgot")
            page.locator("form#forgot input[name=email]").fill(email)
            assert press(page, page.get_by_role("button", name="Send reset code")) == 303
            at(page, pages, "/auth/reset")
            j.look("reset")
            mail.wait_for(email, 2)
            code = mail.code(email, index=1)
            SECRETS_SEEN.append(code)
            form = page.locator("form#reset")
            expect(form.locator("input[name=new_password]")).to_have_attribute("autocomplete", "new-password")
            form.locator("input[name=email]").fill(email)
            form.locator("input[name=code]").fill(code)
            form.locator("input[name=new_password]").fill(new_password)
            assert press(page, form.get_by_role("button", name="Set new password")) == 303
            assert at(page, pages, "/auth/sign-in")["notice"] == "password_reset"
            expect(notice(page)).to_be_visible()
            j.look("sign-in-password-reset")
            form = page.locator("form#sign-in")
            form.locator("input[name=email]").fill(email)
            form.locator("input[name=password]").fill(PASSWORD)
            assert press(page, form.get_by_role("button", name="Sign in", exact=True)) == 401
            expect(error(page)).to_contain_text("The email or password is wrong.")
            j.look("sign-in-error")
            sign_in(j, pages, email, new_password)
        problem(pages.me(token=token), 401, "unauthorized")
        other.page.goto(pages.url + "/auth/account")
        at(other.page, pages, "/auth/sign-in")


def test_wrong_codes_count_down_then_burn_the_code(pages, mail, browser):
    """With OTP_MAX_ATTEMPTS=3: "2 attempts left", "1 attempt left", then the
    code is burned (the right one too) and a new one can be asked for."""
    email = unique_email("wrongcode")
    with journey(browser) as j:
        page = j.page
        open_sign_up(j, pages, email)
        code = mail.code(email)
        SECRETS_SEEN.append(code)
        wrong = f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"
        field = page.locator("form#verify input[name=code]")
        verify_button = page.locator("form#verify").get_by_role("button", name="Verify")
        for left in ("2 attempts left", "1 attempt left"):
            field.fill(wrong)
            assert press(page, verify_button) == 400
            expect(error(page)).to_contain_text("That code is wrong.")
            expect(error(page)).to_contain_text(left)
        j.look("verify-wrong-code")
        field.fill(wrong)
        assert press(page, verify_button) == 429
        expect(error(page)).to_contain_text("Too many wrong codes. This code can no longer be used")
        resend = page.locator("form#resend").get_by_role("button", name="Send a new code")
        expect(resend).to_be_visible()
        j.look("verify-burned")
        problem(pages.verify_email(email, code), 429, "too_many_attempts")  # the right code too
        assert press(page, resend) < 400
        mail.wait_for(email, 2)
        at(page, pages, "/auth/verify")


def test_a_cross_site_form_post_is_refused(pages, mail, browser, site):
    """A form on another origin posting the right password to the sign-in:
    403 with the refusal page, and no session."""
    email = account(pages, mail)
    with journey(browser) as j:
        page = j.page
        page.goto(pages.url + "/auth/sign-in")  # the browser holds its csrf cookie, as a visitor's would
        page.goto(site.url + "/cross-site")
        page.locator("#cross input[name=email]").fill(email)
        page.locator("#cross input[name=password]").fill(PASSWORD)
        assert press(page, page.locator("#go")) == 403
        at(page, pages, "/auth/sign-in")
        expect(page.locator("h1")).to_have_text(REFUSAL)
        expect(error(page)).to_be_visible()
        j.look("refused")
        page.goto(pages.url + "/auth/account")
        at(page, pages, "/auth/sign-in")


# Without JavaScript, by keyboard --------------------------------------------------

def test_the_pages_work_without_javascript(pages, mail, browser):
    """Sign-up, verification and sign-in with scripts disabled."""
    email = unique_email("nojs")
    with journey(browser, javascript=False) as j:
        open_sign_up(j, pages, email, prefix="nojs-")
        verify(j, pages, mail, email, prefix="nojs-")
        page = j.page
        assert press(page, page.locator("form#sign-out").get_by_role("button", name="Sign out")) == 303
        at(page, pages, "/auth/sign-in")
        sign_in(j, pages, email)
        j.look("nojs-account")


def tab_to(page, selector, limit=40):
    """Presses Tab until the focus is on `selector`."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{limit} presses of Tab never reached {selector} on {page.url}")


def test_the_pages_work_by_keyboard_alone(pages, mail, browser):
    """Sign-up, verification, sign-in and sign-out with Tab, typing and Enter:
    no click, no fill."""
    email = unique_email("keyboard")
    with journey(browser) as j:
        page = j.page
        page.goto(pages.url + "/auth/sign-up")
        j.look("kbd-sign-up")
        tab_to(page, "form#sign-up input[name=email]")
        page.keyboard.type(email)
        tab_to(page, "form#sign-up input[name=password]")
        page.keyboard.type(PASSWORD)
        SECRETS_SEEN.append(PASSWORD)
        assert enter(page) == 303
        at(page, pages, "/auth/verify")
        j.look("kbd-verify")
        code = mail.code(email)
        SECRETS_SEEN.append(code)
        tab_to(page, "form#verify input[name=code]")
        page.keyboard.type(code)
        assert enter(page) == 303
        # The browser that signed up is signed in by its code; out, then in
        # again by password.
        at(page, pages, "/auth/account")
        tab_to(page, "form#sign-out button[type=submit]")
        assert enter(page) == 303
        at(page, pages, "/auth/sign-in")
        j.look("kbd-sign-in")
        tab_to(page, "form#sign-in input[name=email]")
        page.keyboard.press("Control+A")
        page.keyboard.type(email)
        tab_to(page, "form#sign-in input[name=password]")
        page.keyboard.type(PASSWORD)
        assert enter(page) == 303  # the first button, "Sign in" (via=password), is the default
        at(page, pages, "/auth/account")
        expect(page.locator("#account-email")).to_have_text(email)
        j.look("kbd-account")
        tab_to(page, "form#sign-out button[type=submit]")
        assert enter(page) == 303
        at(page, pages, "/auth/sign-in")


# Problem pages -------------------------------------------------------------------

def test_problem_pages(pages, browser):
    with journey(browser) as j:
        page = j.page
        page.goto(pages.url + "/problems/invalid-code")
        expect(page.locator("h1")).to_have_text("Invalid code")
        j.look("problem")
        assert page.goto(pages.url + "/problems/no-such-problem").status == 404
        j.look("problem-not-found")


# The admin console ---------------------------------------------------------------

def test_the_console_registers_and_deletes_oidc_clients(pages, browser):
    """An OpenID Connect client's life in the console: registered with its
    redirect URIs one per line, its id and secret shown once, listed
    without the secret (as the admin API lists it), a URI of the wrong form
    refused in place, deleted after a confirmation."""
    name = f"journey client {uuid.uuid4().hex[:8]}"
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    with journey(browser) as j:
        page = j.page
        page.goto(pages.url + "/admin/clients")
        at(page, pages, "/admin/sign-in")
        page.locator("form#admin-sign-in input[name=token]").fill(ADMIN_TOKEN)
        assert press(page, page.locator("form#admin-sign-in").get_by_role("button", name="Sign in")) == 303
        page.goto(pages.url + "/admin/clients")
        j.look("admin-clients")
        form = page.locator("form#create-client")
        form.locator("input[name=name]").fill(name)
        form.locator("textarea[name=redirect_uris]").fill("http://shop.example.com/callback")
        assert press(page, form.get_by_role("button", name="Register client")) == 400
        expect(error(page)).to_contain_text("http is allowed only on localhost")
        form = page.locator("form#create-client")
        form.locator("input[name=name]").fill(name)
        form.locator("textarea[name=redirect_uris]").fill(
            "https://shop.example.com/callback\n\nhttp://localhost:3000/callback\n")
        assert press(page, form.get_by_role("button", name="Register client")) == 201
        client_id = page.locator("input#new-client-id").input_value()
        secret = page.locator("input#new-client-secret").input_value()
        SECRETS_SEEN.append(secret)
        assert re.fullmatch(r"oc_[A-Za-z0-9_-]{22}", client_id) and secret.startswith("ocs_")
        expect(page.locator("#notice")).to_contain_text("not shown again")
        j.look("admin-client-created")
        listed = {c["client_id"]: c for c in pages.admin_list_oidc_clients(headers=admin).json()["oidc_clients"]}
        assert listed[client_id]["redirect_uris"] == ["https://shop.example.com/callback",
                                                      "http://localhost:3000/callback"]
        assert listed[client_id]["type"] == "confidential"
        page.goto(pages.url + "/admin/clients")
        row = page.locator("table#clients tbody tr", has_text=client_id)
        expect(row).to_contain_text(name)
        assert secret not in page.content()
        row.get_by_role("link", name=f"Delete {name}").click()
        at(page, pages, f"/admin/clients/{client_id}/delete")
        j.look("admin-client-delete")
        assert press(page, page.locator("form#delete-client").get_by_role("button", name="Delete client")) == 303
        assert at(page, pages, "/admin/clients")["notice"] == "deleted"
        expect(page.locator("table#clients")).not_to_contain_text(client_id)
        problem(pages.admin_delete_oidc_client(client_id, headers=admin), 404, "not_found")


def test_the_admin_console(pages, mail, browser, site):
    """Sign-in with the token, the charts, the events and their filter, and an
    API key's life: created and shown once, listed without its secret,
    revoked after a confirmation, refused from then on."""
    email = account(pages, mail)
    login(pages, email, PASSWORD, SECRETS_SEEN)
    pages.after_answer()  # the events are written just after the answers
    name = f"journey key {uuid.uuid4().hex[:8]}"
    with journey(browser) as j:
        page = j.page
        page.goto(pages.url + "/admin/keys")
        at(page, pages, "/admin/sign-in")
        j.look("admin-sign-in")
        token = page.locator("form#admin-sign-in input[name=token]")
        expect(token).to_have_attribute("type", "password")
        token.fill("not-the-admin-token")
        sign_in_button = page.locator("form#admin-sign-in").get_by_role("button", name="Sign in")
        assert press(page, sign_in_button) == 401
        expect(error(page)).to_be_visible()
        j.look("admin-sign-in-error")
        page.locator("form#admin-sign-in input[name=token]").fill(ADMIN_TOKEN)
        assert press(page, sign_in_button) == 303
        expect(page).to_have_url(re.compile("^" + re.escape(pages.url + "/admin") + r"/?$"))

        # Overview
        expect(page.locator("dl#stats")).to_be_visible()
        for label in ("Test codes pending", "App sends, 24 h", "Test sends, 24 h"):
            expect(page.locator("dl#stats dt", has_text=label)).to_have_count(1)
        for chart, bars in (("chart-hourly", 24), ("chart-daily", 30)):
            svg = page.locator(f"svg#{chart}")
            expect(svg).to_have_attribute("role", "img")
            expect(svg).to_have_attribute("aria-label", re.compile(r"\S"))
            expect(svg.locator("g.bar")).to_have_count(bars)
            per_bar = svg.evaluate("s => [...s.querySelectorAll('g.bar')].map(g => [...g.querySelectorAll('rect')]"
                                   ".map(r => ['sent', 'verified', 'failed'].filter(c => r.classList.contains(c))"
                                   ".join(' ')))")
            for series in per_bar:
                assert sorted(series) == ["failed", "sent", "verified"], (chart, per_bar)
            for series in ("sent", "verified", "failed"):
                expect(svg.locator(f"g.bar rect.{series} title")).to_have_count(bars)
        titles = page.locator("svg#chart-hourly g.bar rect.sent title").all_text_contents()
        sent = [int(re.search(r"sent: (\d+)", t).group(1)) for t in titles]
        assert sum(sent[-2:]) >= 1, titles  # this hour (or the last, at a turn of the hour) sent a code
        # Drawn, not only present: the SVG's elements are the svg's own children, each bar on screen.
        assert page.locator("svg#chart-hourly > g.bar").count() == 24
        drawn = [page.locator("svg#chart-hourly > g.bar").nth(i).locator("rect.sent").bounding_box()
                 for i in (22, 23)]
        assert max(box["height"] for box in drawn) > 0, drawn
        expect(page.locator("svg#chart-hourly text.tick").first).to_be_visible()
        for series in ("sent", "verified", "failed"):
            expect(page.locator("main")).to_contain_text(re.compile(series, re.I))
        j.look("admin-overview")

        # Events
        page.get_by_role("link", name="Events", exact=True).click()
        at(page, pages, "/admin/events")
        rows = page.locator("table#events tbody tr")
        expect(rows.first).to_be_visible()
        j.look("admin-events")
        page.locator("form#filter input[name=address]").fill(email)
        page.locator("form#filter select[name=kind]").select_option("login_ok")
        page.locator("form#filter button[type=submit]").click()
        expect(page).to_have_url(re.compile(re.escape(pages.url + "/admin/events?") + ".*kind=login_ok"))
        assert query_of(page.url)["address"] == email
        expect(rows).to_have_count(1)
        label = page.locator("select[name=kind] option[value=login_ok]").text_content().strip()
        assert rows.first.locator("td, th").nth(1).text_content().strip() in ("login_ok", label)
        page.locator("form#filter input[name=address]").fill("")
        page.locator("form#filter select[name=kind]").select_option("code_sent")
        page.locator("form#filter button[type=submit]").click()
        expect(page).to_have_url(re.compile(re.escape(pages.url + "/admin/events?") + ".*kind=code_sent"))
        expect(rows.first).to_be_visible()
        label = page.locator("select[name=kind] option[value=code_sent]").text_content().strip()
        kinds = {r.locator("td, th").nth(1).text_content().strip() for r in rows.all()}
        assert kinds and kinds <= {"code_sent", label}, kinds
        j.look("admin-events-filtered")

        # API keys
        page.get_by_role("link", name="API keys", exact=True).click()
        at(page, pages, "/admin/keys")
        j.look("admin-keys")
        form = page.locator("form#create-key")
        form.locator("input[name=name]").fill(name)
        form.locator("input[name=app_name]").fill("Journey app")
        form.locator("input[name=channels][value=email]").check()
        assert press(page, form.get_by_role("button", name="Create key")) == 201
        new_key = page.locator("input#new-key")
        expect(new_key).not_to_be_editable()
        key = new_key.input_value()
        SECRETS_SEEN.append(key)
        assert key.startswith("otpk_"), key
        expect(notice(page)).to_contain_text("Copy this key now: it is not shown again.")
        expect(page.locator("button#copy-key")).to_be_visible()  # unhidden by /assets/copy.js
        j.look("admin-key-created")
        assert pages.otp_send("email", unique_email("keyed"), "confirm_payment", headers=auth(key)).status_code == 202

        page.goto(pages.url + "/admin/keys")
        assert key not in page.content()
        row = page.locator("table#keys tbody tr", has_text=name)
        expect(row).to_have_count(1)
        expect(row).to_contain_text("active")
        expect(row).to_contain_text(key[-4:])
        row.get_by_role("link", name="Revoke").click()
        expect(page).to_have_url(re.compile("^" + re.escape(pages.url) + r"/admin/keys/[^/?]+/revoke$"))
        expect(page.get_by_role("link", name="Cancel")).to_be_visible()
        j.look("admin-revoke")
        assert press(page, page.locator("form#revoke").get_by_role("button", name="Revoke key")) == 303
        assert at(page, pages, "/admin/keys")["notice"] == "revoked"
        expect(row).to_contain_text("revoked")
        expect(row.get_by_role("link", name="Revoke")).to_have_count(0)
        j.look("admin-keys-revoked")
        problem(pages.otp_send("email", unique_email("keyed"), "confirm_payment", headers=auth(key)), 401,
                "unauthorized")

        # Sign out
        assert press(page, page.locator("form#sign-out").get_by_role("button", name="Sign out")) == 303
        at(page, pages, "/admin/sign-in")
        page.goto(pages.url + "/admin")
        at(page, pages, "/admin/sign-in")
