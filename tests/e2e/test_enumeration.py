"""No account enumeration: known and unknown addresses get the same status,
body and timing. Timing is compared with medians over interleaved samples;
the margins are wide because the gaps they guard against are large (a
~45 ms Argon2id hash, or a mail round trip the stand-in slows to 400 ms)."""

import statistics
import time

from harness import unique_email


def timed(fn, n=9):
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def same(r1, r2):
    assert (r1.status_code, r1.json()) == (r2.status_code, r2.json())


def test_register_answers_alike_for_new_and_existing_accounts(app, verified_user):
    email, _ = verified_user
    same(app.register(email, "whatever pw"),
         app.register(unique_email("new"), "whatever pw"))


def test_resend_and_reset_answer_alike(app, verified_user):
    email, _ = verified_user
    unknown = unique_email("ghost")
    for route, body in [("resend", {"purpose": "verify_email"}), ("resend", {"purpose": "reset_password"}),
                       ("password_reset", {})]:
        same(app.call(route, {"email": email, **body}), app.call(route, {"email": unknown, **body}))


def test_login_answers_alike_for_unknown_email_and_wrong_password(app, verified_user):
    email, _ = verified_user
    same(app.login(email, "wrong password"),
         app.login(unique_email("ghost"), "wrong password"))


def test_login_spends_a_password_hash_on_unknown_emails(app, verified_user):
    email, _ = verified_user
    known = timed(lambda: app.login(email, "wrong password"))
    unknown = timed(lambda: app.login(unique_email("ghost"), "wrong password"))
    # Without the dummy hash `unknown` is a few ms against ~45 ms.
    assert unknown > 0.6 * known, (known, unknown)
    assert abs(known - unknown) < 0.5 * known, (known, unknown)


def test_reset_timing_does_not_wait_for_the_mail_of_known_addresses(app, mail, verified_user):
    email, _ = verified_user
    mail.set(email, delay=0.4)
    try:
        known = timed(lambda: app.password_reset(email), n=5)
        unknown = timed(lambda: app.password_reset(unique_email("ghost")), n=5)
    finally:
        mail.set(email)
    assert known < unknown + 0.2, (known, unknown)
    mail.wait_for(email, 2)  # the mail still went out, after the answer


def test_register_answers_alike_for_new_pending_and_verified_addresses_in_time_too(app, mail, verified_user):
    verified, _ = verified_user
    pending = unique_email("pending")
    assert app.register(pending, "whatever pw").status_code == 202
    mail.wait_for(pending)
    kinds = {"verified": lambda: verified, "pending": lambda: pending, "new": lambda: unique_email("new")}
    answers = {kind: app.register(address(), "whatever pw")
               for kind, address in kinds.items()}
    for kind in ("pending", "new"):
        same(answers["verified"], answers[kind])
    # Interleaved samples, so that drift on a busy machine hits every kind alike.
    samples = {kind: [] for kind in kinds}
    for _ in range(9):
        for kind, address in kinds.items():
            email = address()
            t = time.perf_counter()
            app.register(email, "whatever pw")
            samples[kind].append(time.perf_counter() - t)
    medians = {kind: statistics.median(s) for kind, s in samples.items()}
    slowest, fastest = max(medians.values()), min(medians.values())
    assert slowest - fastest < 0.5 * slowest, medians


def test_a_wrong_code_answers_alike_for_new_and_verified_addresses(app, mail, verified_user):
    """Registering an address, then guessing at its verification code: the
    same answer, attempts left included, whether the address was new or
    already verified (a verified one gets a decoy code nobody is sent)."""
    email, _ = verified_user
    new = unique_email("new")
    for address in (email, new):
        assert app.register(address, "attacker pw 1").status_code == 202
    real = mail.code(new)
    guess = "000000" if real != "000000" else "111111"
    for _ in range(5):
        same(app.verify_email(email, guess), app.verify_email(new, guess))
    assert app.verify_email(new, real).json()["code"] == "too_many_attempts"


# Sequences of requests -----------------------------------------------------------

ATTACKER_PW = "attacker pw 1"


def read(r):
    """What a client reads of an answer: the status and the body."""
    return r.status_code, r.json()


def owned_by_others(app, mail):
    """Addresses someone else holds, in each state: never seen, signed up
    long ago and never verified (its code run out), and verified."""
    unknown, stale, verified = unique_email("unknown"), unique_email("stale"), unique_email("verified")
    assert app.register(stale, "owner's own pw").status_code == 202
    assert app.register(verified, "owner's own pw").status_code == 202
    assert app.verify_email(verified, mail.code(verified)).status_code == 200
    mail.wait_for(stale)
    app.expire_codes(stale)
    return {"unknown": unknown, "stale": stale, "verified": verified}


def not_the_code(mail, address):
    """A guess that is surely wrong where the test can read the code."""
    sent = mail.to(address)
    return "000001" if sent and "000000" in sent[-1]["text"] else "000000"


def test_register_then_sign_in_with_that_password_reads_alike_for_every_address(app, mail):
    """The two-request probe: register the address with a password of the
    attacker's, then sign in with it. An unknown address now holds the
    attacker's unverified account; the others ignored the registration.
    Every answer after reads the same, guesses included; only the mailbox
    of the new account gets a fresh code."""
    answers = {}
    for kind, x in owned_by_others(app, mail).items():
        steps = [app.register(x, ATTACKER_PW), app.login(x, ATTACKER_PW)]
        app.after_answer()
        steps += [app.login(x, ATTACKER_PW), app.verify_email(x, not_the_code(mail, x)),
                  app.login(x, "another guess")]
        answers[kind] = [read(r) for r in steps]
    assert answers["stale"] == answers["unknown"] == answers["verified"], answers
    status, body = answers["unknown"][1]
    assert status == 401 and body["code"] == "invalid_credentials", body
    # Only the mailbox of the account the attacker made got codes: one from
    # the sign-up, one per sign-in with its password.
    x = unique_email("mailed")
    app.register(x, ATTACKER_PW)
    app.login(x, ATTACKER_PW)
    mail.wait_for(x, 2)
    mail.expect(x, 2)


def test_a_pending_sign_up_reads_as_an_address_someone_asked_a_code_for(app, mail):
    """A sign-up pending right now asked for a code a moment ago; so did a
    resend for an unknown address. The attacker's sequences read the same."""
    pending, asked = unique_email("pending"), unique_email("asked")
    assert app.register(pending, "owner's own pw").status_code == 202
    assert app.resend(asked, "verify_email").status_code == 202
    mail.wait_for(pending)
    app.after_answer()
    answers = {}
    for kind, x in (("pending", pending), ("asked", asked)):
        steps = [app.register(x, ATTACKER_PW), app.login(x, ATTACKER_PW), app.verify_email(x, "000000"),
                 app.login(x, ATTACKER_PW), app.verify_email(x, "000000")]
        answers[kind] = [read(r) for r in steps]
    assert answers["pending"] == answers["asked"], answers


def test_register_then_sign_in_takes_the_same_time_for_every_address(app, mail, verified_user):
    """The fresh code goes after the answer: a right password on the
    attacker's own unverified account costs what a wrong one costs."""
    verified, _ = verified_user
    mine = unique_email("mine")
    assert app.register(mine, ATTACKER_PW).status_code == 202
    samples = {"unverified, right password": [], "verified, wrong password": []}
    for _ in range(5):
        for kind, x in (("unverified, right password", mine), ("verified, wrong password", verified)):
            t = time.perf_counter()
            assert app.login(x, ATTACKER_PW).status_code == 401
            samples[kind].append(time.perf_counter() - t)
    medians = {k: statistics.median(v) for k, v in samples.items()}
    slowest, fastest = max(medians.values()), min(medians.values())
    assert slowest - fastest < 0.5 * slowest, medians


def test_the_sign_in_page_reads_alike_after_a_sign_up_for_every_address(app, mail):
    """The same probe through the pages: sign up, then sign in with that
    password. The same page, the same words, for every address."""
    from test_page_defences import Browser, Html
    pages = {}
    for kind, x in owned_by_others(app, mail).items():
        b = Browser(app)
        r = b.submit("/auth/sign-up", "sign-up", {"email": x, "password": ATTACKER_PW})
        assert r.status_code == 303 and r.headers["location"].startswith("/auth/verify")
        r = b.sign_in(x, ATTACKER_PW)
        error = Html(r.text).by_id("error")
        pages[kind] = (r.status_code, Html.text(error) if error else None)
    assert pages["stale"] == pages["unknown"] == pages["verified"], pages
    status, words = pages["unknown"]
    assert status == 401 and "If you signed up and have not verified your address yet" in words, pages


def test_a_registration_never_moves_a_live_codes_clock(app, mail, verified_user):
    """A live code keeps its expiry when a registration replaces it: the
    decoy of a verified address, the unmailed code a resend filed for an
    unknown one, and a pending sign-up's all run out at the same moment.
    (The codes are made to end in 4 s in the database.)"""
    verified, _ = verified_user
    unknown, pending = unique_email("resent"), unique_email("pending")
    assert app.register(verified, "owner's own pw").status_code == 202  # files the decoy
    assert app.resend(unknown, "verify_email").status_code == 202
    assert app.register(pending, "owner's own pw").status_code == 202
    mail.wait_for(pending)
    addresses = (verified, unknown, pending)
    app.sql(command="UPDATE codes SET expires_at = CAST(strftime('%s', 'now') AS INTEGER) + 4 WHERE address IN ("
                    + ",".join(f"'{a}'" for a in addresses) + ")")
    for x in addresses:
        assert app.register(x, ATTACKER_PW).status_code == 202
    time.sleep(5)
    answers = {x: read(app.verify_email(x, "000000")) for x in addresses}
    assert {status for status, _ in answers.values()} == {400}, answers
    assert {body["code"] for _, body in answers.values()} == {"expired_code"}, answers


def test_a_capped_registration_reads_alike_for_every_address(uncooled, mail):
    """Once the mailbox's hourly cap is reached (filled with resets of an
    unknown alias, which mail nobody), a registration files nothing, for a
    verified address too: a guess after it reads the same, whatever the
    address."""
    addresses = owned_by_others(uncooled, mail)
    answers = {}
    for kind, x in addresses.items():
        if kind == "stale":
            continue  # its own sign-up's expired code is still there: "someone asked a code"
        alias = x.replace("@", "+x@")
        for _ in range(3):
            assert uncooled.password_reset(alias).status_code == 202
        steps = [uncooled.register(x, ATTACKER_PW), uncooled.verify_email(x, "000000")]
        answers[kind] = [read(r) for r in steps]
    assert answers["unknown"] == answers["verified"], answers
    status, body = answers["unknown"][1]
    assert status == 400 and "attempts_left" not in body, body
