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
