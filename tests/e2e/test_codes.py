"""Code security: single use, attempt caps that a resend never refills,
atomic consumption under concurrency, and digests at rest."""

import hashlib
import hmac
import struct
from concurrent.futures import ThreadPoolExecutor

from harness import PEPPER, problem, unique_email


def fresh(app, mail, tag):
    email = unique_email(tag)
    assert app.register(email, "correct horse").status_code == 202
    return email, mail.code(email)


def wrong(code):
    return f"{(int(code) + 1) % 10**len(code):0{len(code)}d}"


def test_a_code_works_once(app, mail):
    email, code = fresh(app, mail, "once")
    assert app.verify_email(email, code).status_code == 200
    problem(app.verify_email(email, code), 400, "invalid_code")


def test_no_pending_code_is_invalid_code(app):
    problem(app.verify_email(unique_email("none"), "123456"), 400, "invalid_code")


def test_five_wrong_guesses_burn_the_code(app, mail):
    email, code = fresh(app, mail, "burn")
    for _ in range(4):
        problem(app.verify_email(email, wrong(code)), 400, "invalid_code")
    problem(app.verify_email(email, wrong(code)), 429, "too_many_attempts")
    # Burned: even the right code is refused now.
    problem(app.verify_email(email, code), 429, "too_many_attempts")


def test_a_resend_does_not_refill_the_attempts(app, mail):
    email, code = fresh(app, mail, "refill")
    for _ in range(3):
        problem(app.verify_email(email, wrong(code)), 400, "invalid_code")
    assert app.resend(email, "verify_email").status_code == 202
    new = mail.code(email, index=1)
    # 3 failures carried over: one more wrong guess is allowed, the next burns it.
    problem(app.verify_email(email, wrong(new)), 400, "invalid_code")
    problem(app.verify_email(email, wrong(new)), 429, "too_many_attempts")
    problem(app.verify_email(email, new), 429, "too_many_attempts")
    # Re-registering refills nothing either: while the burned code lives,
    # it keeps the registration (a notice goes out, no code).
    app.register(email, "another password")
    assert "already waiting" in mail.wait_for(email, 3)[-1]["json"]["subject"]
    problem(app.verify_email(email, new), 429, "too_many_attempts")


def test_concurrent_verifies_of_one_code_give_exactly_one_success(app, mail):
    email, code = fresh(app, mail, "race")
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: app.verify_email(email, code), range(16)))
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(200) == 1, statuses
    # The others find the code spent (invalid_code), or, when more guesses
    # were claimed before the first one consumed it than the code allows,
    # its attempts used up (too_many_attempts): a loaded machine gets both.
    assert {r.json()["code"] for r in results if r.status_code != 200} <= {"invalid_code", "too_many_attempts"}


def test_concurrent_reset_confirms_change_the_password_once(app, mail, verified_user):
    email, _ = verified_user
    app.password_reset(email)
    code = mail.code(email, index=1)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(
            lambda i: app.password_reset_confirm(email, code, f"racing password {i}"),
            range(8)))
    winners = [i for i, r in enumerate(results) if r.status_code == 200]
    assert len(winners) == 1, [r.status_code for r in results]
    assert app.login(email, f"racing password {winners[0]}").status_code == 200


def test_concurrent_wrong_guesses_never_exceed_the_cap(app, mail):
    email, code = fresh(app, mail, "guessrace")
    guesses = [f"{(int(code) + i) % 10**6:06d}" for i in range(1, 21)]
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda g: app.verify_email(email, g), guesses))
    codes = [r.json()["code"] for r in results]
    assert codes.count("invalid_code") == 4, codes
    assert codes.count("too_many_attempts") == 16, codes
    problem(app.verify_email(email, code), 429, "too_many_attempts")


def test_codes_are_stored_only_as_hmac_under_the_pepper(app, mail):
    email, code = fresh(app, mail, "atrest")
    with app.db() as db:
        rows = db.execute("SELECT * FROM codes WHERE address = ?", (email,)).fetchall()
        cols = [d[0] for d in db.execute("SELECT * FROM codes LIMIT 0").description]
    assert len(rows) == 1
    row = dict(zip(cols, rows[0]))
    assert all(code not in str(v) for v in row.values()), row
    # A registration's code is bound to the password it was issued for.
    with app.db() as db:
        (password_hash,) = db.execute("SELECT password_hash FROM users WHERE email = ?", (email,)).fetchone()
    fields = [b"code", b"core", b"email", b"verify_email", email.encode(), code.encode(),
              b"password", password_hash.encode()]
    msg = b"".join(struct.pack(">I", len(f)) + f for f in fields)
    assert row["digest"] == hmac.new(PEPPER.encode(), msg, hashlib.sha256).hexdigest()
