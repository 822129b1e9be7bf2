"""Each mail provider end to end, with the exact request it makes, and the
TEMPLATES override. Postmark and SendGrid run against local stand-ins; the
Cloudflare `send_email` binding runs in wrangler's own local simulation."""

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import create_key, twilio_vars
from harness import MAIL_API_KEY, TWILIO_TOKEN, StandIn, Worker, code_in, problem, unique_email

TEMPLATES = {
    "verify_email": {"subject": "Welcome to {{app_name}}: {{code}}",
                     "html": "<p>{{app_name}} code <b>{{code}}</b>, {{minutes}} min</p>"},
    "default": {"text": "{{app_name}} {{purpose}} code:\n\n    {{code}}\n\nValid {{minutes}} min.",
                "sms": "{{code}} is your {{app_name}} {{purpose}} code ({{minutes}} min)"},
}


CONTENT_SID = "HX00000000000000000000000000000e2e"


@pytest.fixture(scope="module")
def stand_ins():
    servers = {"postmark": StandIn(ok_body={"ErrorCode": 0, "Message": "OK", "MessageID": "x"}),
               "sendgrid": StandIn(ok_status=202, ok_body={})}
    yield servers
    for s in servers.values():
        s.close()


@pytest.fixture(scope="module")
def workers(stand_ins, twilio):
    specs = {
        "postmark": dict(mail=stand_ins["postmark"], vars={"MAIL_PROVIDER": "postmark"}),
        "sendgrid": dict(mail=stand_ins["sendgrid"], vars={"MAIL_PROVIDER": "sendgrid"}),
        "cloudflare": dict(vars={"MAIL_PROVIDER": "cloudflare"}, send_email="EMAIL", secrets={"MAIL_API_KEY": None}),
        "templates": dict(mail=stand_ins["postmark"], vars={"MAIL_PROVIDER": "postmark", "APP_NAME": "Acme & <Co>",
                                                            "TWILIO_WHATSAPP_CONTENT_SID": CONTENT_SID,
                                                            **twilio_vars(twilio)},
                          toml_vars={"TEMPLATES": json.dumps(TEMPLATES)},
                          secrets={"TWILIO_AUTH_TOKEN": TWILIO_TOKEN}),
    }
    with ThreadPoolExecutor(4) as pool:
        started = dict(zip(specs, pool.map(lambda kv: Worker(kv[0], **kv[1]), specs.items())))
    yield started
    for w in started.values():
        w.stop()


def register_and_verify(w, email, code_of):
    assert w.register(email, "correct horse").status_code == 202
    r = w.verify_email(email, code_of(email))
    assert r.status_code == 200, r.text


def test_postmark_request_shape(workers, stand_ins):
    pm, email = stand_ins["postmark"], unique_email("postmark")
    register_and_verify(workers["postmark"], email, pm.code)
    req = pm.to(email)[0]
    assert req["path"] == "/email"
    assert req["headers"]["x-postmark-server-token"] == MAIL_API_KEY
    assert req["headers"]["accept"] == "application/json"
    assert req["headers"]["content-type"].startswith("application/json")
    assert "authorization" not in req["headers"]
    body = req["json"]
    assert set(body) == {"From", "To", "Subject", "TextBody", "HtmlBody", "MessageStream"}
    assert body["From"] == "Acme <no-reply@acme.test>" and body["To"] == email
    assert body["MessageStream"] == "outbound" and code_in(body["TextBody"]) in body["HtmlBody"]


def test_postmark_refusal_is_502_and_a_retry_works(workers, stand_ins):
    pm, email = stand_ins["postmark"], unique_email("pmfail")
    pm.set(email, status=422, body={"ErrorCode": 300, "Message": "Invalid email request"})
    problem(workers["postmark"].register(email, "correct horse"), 502,
            "mail_delivery_failed")
    pm.set(email)
    register_and_verify(workers["postmark"], email, lambda e: pm.code(e))


def test_sendgrid_request_shape(workers, stand_ins):
    sg, email = stand_ins["sendgrid"], unique_email("sendgrid")
    register_and_verify(workers["sendgrid"], email, sg.code)
    req = sg.to(email)[0]
    assert req["path"] == "/v3/mail/send"
    assert req["headers"]["authorization"] == f"Bearer {MAIL_API_KEY}"
    body = req["json"]
    assert set(body) == {"personalizations", "from", "subject", "content"}
    assert body["personalizations"] == [{"to": [{"email": email}]}]
    assert body["from"] == {"email": "no-reply@acme.test", "name": "Acme"}
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]


def cloudflare_mail(w, email, timeout=10):
    """wrangler's local send_email prints the message head and writes the
    text part to a file; returns (head, text)."""
    deadline = time.time() + timeout
    pattern = re.compile(r"send_email binding called with MessageBuilder:\s*\n(From: .*\nTo: " + re.escape(email)
                         + r"\nSubject: .*)\n\s*\nText: (\S+)")
    while time.time() < deadline:
        found = pattern.findall(w.logs())
        if found:
            head, path = found[-1]
            return head, Path(path).read_text()
        time.sleep(0.1)
    raise AssertionError(f"no send_email call for {email}:\n{w.logs()[-2000:]}")


def test_cloudflare_send_email_binding(workers):
    w, email = workers["cloudflare"], unique_email("cloudflare")
    register_and_verify(w, email, lambda e: code_in(cloudflare_mail(w, e)[1]))
    head, text = cloudflare_mail(w, email)
    assert head.startswith('From: "Acme" <no-reply@acme.test>\n')
    assert "verification code" in head


def test_templates_override_subject_html_text_and_sms(workers, stand_ins, twilio):
    w, pm = workers["templates"], stand_ins["postmark"]
    email = unique_email("tmpl")
    assert w.register(email, "correct horse").status_code == 202
    body = pm.wait_for(email)[-1]["json"]
    code = pm.code(email)
    assert body["Subject"] == f"Welcome to Acme & <Co>: {code}"
    assert body["HtmlBody"] == f"<p>Acme &amp; &lt;Co&gt; code <b>{code}</b>, 10 min</p>"
    assert "verify your email address" in body["TextBody"], "parts left out keep their default"
    key = create_key(w, name="shop")["key"]
    other = unique_email("tmpl")
    r = w.otp_send("email", other, "confirm_payment", ttl_seconds=300, headers={"authorization": f"Bearer {key}"})
    assert r.status_code == 202, r.text
    text = pm.wait_for(other)[-1]["json"]["TextBody"]
    assert text == f"Acme & <Co> confirm_payment code:\n\n    {pm.code(other)}\n\nValid 5 min."
    phone = "+15551230000"
    r = w.otp_send("sms", phone, "unlock", ttl_seconds=60, headers={"authorization": f"Bearer {key}"})
    assert r.status_code == 202, r.text
    sms = twilio.wait_for(phone)[-1]["form"]["Body"]
    assert sms == f"{code_in(sms)} is your Acme & <Co> unlock code (1 min)"


def test_whatsapp_content_template_carries_the_code(workers, twilio):
    w = workers["templates"]
    key = {"authorization": f"Bearer {create_key(w, name='wa')['key']}"}
    phone = "+15551230001"
    r = w.otp_send("whatsapp", phone, "login", headers=key)
    assert r.status_code == 202, r.text
    form = twilio.wait_for(f"whatsapp:{phone}")[-1]["form"]
    assert set(form) == {"To", "From", "ContentSid", "ContentVariables"}
    assert form["ContentSid"] == CONTENT_SID
    code = json.loads(form["ContentVariables"])["1"]
    r = w.otp_verify("whatsapp", phone, "login", code, headers=key)
    assert (r.status_code, r.json()) == (200, {"valid": True})
