"""What is at rest: Argon2id password hashes with OWASP parameters (and a
rehash when they change), and session tokens only as their SHA-256."""

import hashlib

from conftest import login
from harness import Worker, unique_email


def test_passwords_are_argon2id_with_owasp_parameters(app, verified_user):
    email, password = verified_user
    with app.db() as db:
        (phc,) = db.execute("SELECT password_hash FROM users WHERE email = ?", (email,)).fetchone()
    assert phc.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), phc
    assert password not in phc


def test_sessions_store_only_the_token_hash(app, verified_user, secrets_seen):
    email, password = verified_user
    token = login(app, email, password, secrets_seen)
    with app.db() as db:
        rows = db.execute("SELECT * FROM sessions").fetchall()
    flat = repr(rows)
    assert token not in flat
    assert hashlib.sha256(token.encode()).hexdigest() in flat


def test_login_rehashes_when_the_parameters_change(mail):
    old = Worker("oldhash", mail=mail, vars={"ARGON2_MEMORY_KIB": "1024", "ARGON2_ITERATIONS": "1"})
    email = unique_email("rehash")
    try:
        old.register(email, "correct horse")
        assert old.verify_email(email, mail.code(email)).status_code == 200
        with old.db() as db:
            (before,) = db.execute("SELECT password_hash FROM users").fetchone()
        assert "$m=1024,t=1,p=1$" in before
    finally:
        old.stop()
    new = Worker("newhash", mail=mail, state_dir=old.state)
    try:
        login(new, email, "correct horse")
        with new.db() as db:
            (after,) = db.execute("SELECT password_hash FROM users").fetchone()
        assert after.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), after
        login(new, email, "correct horse")
    finally:
        new.stop()
