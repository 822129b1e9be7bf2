"""Schema changes ship as D1 migrations (migrations/, applied with
`wrangler d1 migrations apply DB`): applied to an empty database they build
exactly schema.sql, and a database of an earlier release, holding what its
users did, upgrades with every row kept and every flow still working on
those rows."""

import re
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest

from conftest import SECRETS_SEEN, create_key, login
from harness import ADMIN_TOKEN, ROOT, Worker, unique_email

MIGRATIONS = sorted((ROOT / "migrations").glob("*.sql"))
FIRST = MIGRATIONS[0]
# The tables of the first migration: what a database of the first
# releases holds (send_counts only came with 0002).
FIRST_TABLES = ["users", "codes", "sessions", "api_keys", "auth_events"]


def normalized(sql):
    sql = re.sub(r"--[^\n]*", "", sql)
    sql = re.sub(r"\bIF\s+NOT\s+EXISTS\s+", "", sql, flags=re.I)
    sql = re.sub(r"\s+", " ", sql)
    return re.sub(r"\s*([(),])\s*", r"\1", sql).strip()


def schema_of(conn):
    """Every table and index, as sqlite_master holds them, without D1's and
    SQLite's own."""
    rows = conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL"
        " AND name NOT LIKE 'sqlite%' AND substr(name, 1, 4) <> '_cf_' AND name <> 'd1_migrations'").fetchall()
    return sorted((kind, name, table, normalized(sql)) for kind, name, table, sql in rows)


def schema_sql():
    conn = sqlite3.connect(":memory:")
    conn.executescript((ROOT / "schema.sql").read_text())
    return schema_of(conn)


def test_the_migrations_are_numbered_and_start_with_the_initial_schema():
    names = [m.name for m in MIGRATIONS]
    assert names[0] == "0001_initial.sql", names
    for i, name in enumerate(names, start=1):
        assert re.fullmatch(rf"{i:04d}_[a-z0-9_]+\.sql", name), f"{name}: migrations are numbered 0001, 0002, ... without gaps"


def test_every_migration_applied_to_an_empty_database_builds_schema_sql(app):
    # `app`, like every worker of the suite, starts on a database the
    # migrations built (harness.Worker.migrate).
    assert schema_of(app.db()) == schema_sql()
    applied = [r[0] for r in app.db().execute("SELECT name FROM d1_migrations ORDER BY id")]
    assert applied == [m.name for m in MIGRATIONS]


def test_the_comparison_sees_a_difference():
    """The check above is not vacuous: one changed index, one missing
    index and one changed column each make the schemas differ."""
    text = (ROOT / "schema.sql").read_text()
    for changed in [text.replace("ON codes (expires_at)", "ON codes (created_at)"),
                    text.replace("CREATE INDEX IF NOT EXISTS send_counts_hour ON send_counts (hour);", ""),
                    text.replace("attempts       INTEGER NOT NULL DEFAULT 0", "attempts       INTEGER NOT NULL")]:
        assert changed != text
        conn = sqlite3.connect(":memory:")
        conn.executescript(changed)
        assert schema_of(conn) != schema_sql()


def sql_literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, (int, float)):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


def rows_of(conn, table, columns=None):
    """A table's rows; with `columns`, only those (the ones an earlier
    release had: later migrations add columns with defaults)."""
    names = ", ".join(columns) if columns else "*"
    return conn.execute(f"SELECT {names} FROM {table} ORDER BY rowid").fetchall()


@pytest.fixture(scope="module")
def earlier(mail):
    """What the users of a deployed service left in its database, written by
    the flows: a verified account with a session, an account waiting for its
    verification code, an API key, and an app's pending code."""
    w = Worker("upgrade-src", mail=mail)
    try:
        ann, bob, carol = unique_email("ann"), unique_email("bob"), unique_email("carol")
        password = "correct horse battery"
        assert w.register(ann, password).status_code == 202
        ann_code = mail.code(ann)
        assert w.verify_email(ann, ann_code).status_code == 200
        token = login(w, ann, password, SECRETS_SEEN)
        assert w.register(bob, password).status_code == 202
        bob_code = mail.code(bob)
        key = create_key(w, channels=["email"], name="before the upgrade")
        auth = {"authorization": f"Bearer {key['key']}"}
        assert w.otp_send("email", carol, "checkout", headers=auth).status_code == 202
        carol_code = mail.code(carol)
        SECRETS_SEEN.extend([ann_code, bob_code, carol_code])
        w.stop()  # the audit trail's writes after the answers have landed
        db = w.db()
        # The columns the first release had: later migrations add more.
        first = sqlite3.connect(":memory:")
        first.executescript(FIRST.read_text())
        columns = {t: [c[1] for c in first.execute(f"PRAGMA table_info({t})")] for t in FIRST_TABLES}
        rows = {t: rows_of(db, t, columns[t]) for t in FIRST_TABLES}
        inserts = [f"INSERT INTO {t} ({', '.join(columns[t])}) "
                   f"VALUES ({', '.join(map(sql_literal, row))});" for t in FIRST_TABLES for row in rows[t]]
    finally:
        w.stop()
    return dict(rows=rows, columns=columns, inserts="\n".join(inserts), password=password, token=token, key=key,
                ann=ann, bob=(bob, bob_code), carol=(carol, carol_code))


# How an earlier release's database came to be: with the schema file the
# first releases applied by `wrangler d1 execute` (no d1_migrations table),
# or with the first migration applied.
@pytest.mark.parametrize("built_by", ["schema_file", "first_migration"])
def test_a_database_of_an_earlier_release_upgrades_with_its_rows_and_flows(earlier, mail, built_by):
    folder = Path(tempfile.mkdtemp(prefix="otp-migrations-"))
    shutil.copy(FIRST, folder)  # the migrations the earlier release shipped
    rows_file = folder.parent / f"{folder.name}-rows.sql"
    if built_by == "schema_file":
        rows_file.write_text(FIRST.read_text() + "\n" + earlier["inserts"])
        w = Worker(f"upgrade-{built_by}", mail=mail, schema=rows_file, migrations=folder, start=False)
    else:
        rows_file.write_text(earlier["inserts"])
        w = Worker(f"upgrade-{built_by}", mail=mail, schema=True, migrations=folder, start=False)
        w.sql(file=rows_file)
    try:
        assert "send_counts" not in {r[0] for r in w.db().execute("SELECT name FROM sqlite_master")}
        # The release brings its new migrations; the upgrade applies them.
        for m in MIGRATIONS[1:]:
            shutil.copy(m, folder)
        out = w.migrate()
        for m in MIGRATIONS[1:]:
            assert m.name in out, out
        assert w.migrate().count("No migrations to apply") == 1, "a second run changes nothing"
        db = w.db()
        assert schema_of(db) == schema_sql(), "the upgraded database has today's schema"
        for table in FIRST_TABLES:
            assert rows_of(db, table, earlier["columns"][table]) == earlier["rows"][table], \
                f"{table}: rows changed by the upgrade"

        w.start()
        assert w.healthz().status_code == 200
        # The session made before the upgrade still holds; the verified
        # account signs in with its password.
        me = w.me(token=earlier["token"])
        assert me.status_code == 200 and me.json()["email"] == earlier["ann"], me.text
        login(w, earlier["ann"], earlier["password"], SECRETS_SEEN)
        # The code mailed before the upgrade still verifies its account.
        bob, bob_code = earlier["bob"]
        assert w.verify_email(bob, bob_code).status_code == 200
        login(w, bob, earlier["password"], SECRETS_SEEN)
        # The key made before still verifies its pending code and still sends.
        auth = {"authorization": f"Bearer {earlier['key']['key']}"}
        carol, carol_code = earlier["carol"]
        r = w.otp_verify("email", carol, "checkout", carol_code, headers=auth)
        assert r.status_code == 200, r.text
        dave = unique_email("dave")
        assert w.otp_send("email", dave, "checkout", headers=auth).status_code == 202
        dave_code = mail.code(dave)
        SECRETS_SEEN.append(dave_code)
        assert w.otp_verify("email", dave, "checkout", dave_code, headers=auth).status_code == 200
        keys = w.admin_list_keys(headers={"authorization": f"Bearer {ADMIN_TOKEN}"}).json()
        assert earlier["key"]["id"] in str(keys)
    finally:
        w.stop()
