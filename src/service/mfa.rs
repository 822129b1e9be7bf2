//! Two-step sign-in through the flows: enrolment, the second step after a
//! password or an emailed code, replays, drift, the budgets, recovery
//! codes, and what a reset or a race does to a sign-in waiting for it.

use super::testkit::{poll_once, World};
use crate::domain::audit::EventKind;
use crate::domain::email::Email;
use crate::domain::password::Password;
use crate::domain::recovery_code::{RecoveryCode, SecondFactor};
use crate::domain::registrant::PasswordProof;
use crate::domain::session::{Audience, Presented};
use crate::domain::totp::{TotpCode, TotpSecret, STEP_SECS};
use crate::error::ApiError;
use crate::ports::store::User;
use pollster::block_on;

fn pw(s: &str) -> Password {
    Password::parse(s, 8, "password").unwrap()
}

const RIGHT: &str = "correct horse";

/// A world with ann verified and her authenticator app on.
fn world_with(vars: &[(&str, &str)]) -> (World, Email, TotpSecret, Vec<RecoveryCode>) {
    let mut all = vec![("RESEND_COOLDOWN_SECONDS", "0")];
    all.extend_from_slice(vars);
    let w = World::new(&all);
    let ann = Email::parse("ann@example.com").unwrap();
    block_on(async {
        w.svc().register(&ann, &pw(RIGHT)).await.unwrap();
        let code = w.last_code();
        w.svc()
            .verify_email(&ann, &code, &PasswordProof::None)
            .await
            .unwrap();
    });
    let (secret, codes) = w.enrol_totp(&ann, &pw(RIGHT));
    (w, ann, secret, codes)
}

fn world() -> (World, Email, TotpSecret, Vec<RecoveryCode>) {
    world_with(&[])
}

fn code_at(secret: &TotpSecret, w: &World, steps_from_now: i64) -> TotpCode {
    let now = w.clock.0.get() as i64;
    let step = now / STEP_SECS as i64 + steps_from_now;
    TotpCode::parse(&secret.hotp(step as u64)).unwrap()
}

fn ticket(w: &World, ann: &Email, to: Audience) -> String {
    World::mfa_token(block_on(w.svc().login(ann, &pw(RIGHT), to)))
}

fn second(w: &World, ticket: &str, code: SecondFactor) -> Result<String, ApiError> {
    block_on(w.svc().login_mfa(ticket, &code, Audience::Api))
        .map(|(s, _)| s.token.expose().to_owned())
}

fn user(w: &World, email: &Email) -> User {
    w.user(email.as_str()).unwrap()
}

#[test]
fn a_right_password_asks_for_the_second_step_and_the_app_code_gives_the_session() {
    let (w, ann, secret, _) = world();
    let sessions = w.store.sessions.borrow().len();
    let t = ticket(&w, &ann, Audience::Api);
    assert_eq!(w.store.sessions.borrow().len(), sessions, "no session yet");
    let token = second(&w, &t, SecondFactor::Totp(w.totp_now(&secret))).unwrap();
    let me = block_on(w.svc().me(Some(&token), Presented::Bearer)).unwrap();
    assert_eq!(me.email, "ann@example.com");
    // How it was made: both factors.
    let amr = w.store.sign_ins.borrow()[&crate::domain::session::token_hash(&token)]
        .1
        .clone();
    assert_eq!(amr, "pwd otp mfa");
    // The ticket is spent.
    w.advance(STEP_SECS);
    let again = second(&w, &t, SecondFactor::Totp(w.totp_now(&secret)));
    assert_eq!(again.unwrap_err(), ApiError::MfaTokenInvalid);
    assert!(w.events().contains(&("mfa_required", "mfa_required")));
}

#[test]
fn a_wrong_password_answers_as_it_always_did() {
    let (w, ann, _, _) = world();
    let e = block_on(w.svc().login(&ann, &pw("wrong horse"), Audience::Api)).unwrap_err();
    assert_eq!(e, ApiError::InvalidCredentials);
    let unknown = Email::parse("bob@example.com").unwrap();
    let e = block_on(w.svc().login(&unknown, &pw(RIGHT), Audience::Api)).unwrap_err();
    assert_eq!(e, ApiError::InvalidCredentials);
}

#[test]
fn an_emailed_code_is_a_first_factor_too() {
    let (w, ann, secret, _) = world();
    w.keep(block_on(w.svc().login_code(&ann)).unwrap());
    let result = block_on(w.svc().login_with_code(&ann, &w.last_code(), Audience::Api));
    let t = World::mfa_token(result);
    let token = second(&w, &t, SecondFactor::Totp(w.totp_now(&secret))).unwrap();
    let amr = w.store.sign_ins.borrow()[&crate::domain::session::token_hash(&token)]
        .1
        .clone();
    assert_eq!(amr, "otp mfa");
}

#[test]
fn a_code_is_good_once() {
    let (w, ann, secret, _) = world();
    let code = w.totp_now(&secret);
    second(
        &w,
        &ticket(&w, &ann, Audience::Api),
        SecondFactor::Totp(code.clone()),
    )
    .unwrap();
    // The same code, within its 30 seconds, for another sign-in.
    let e = second(
        &w,
        &ticket(&w, &ann, Audience::Api),
        SecondFactor::Totp(code),
    )
    .unwrap_err();
    assert!(matches!(e, ApiError::WrongCode { .. }), "{e:?}");
    // Nor a code of an earlier step than the one used.
    let t = ticket(&w, &ann, Audience::Api);
    let e = second(&w, &t, SecondFactor::Totp(code_at(&secret, &w, -1))).unwrap_err();
    assert!(matches!(e, ApiError::WrongCode { .. }), "{e:?}");
}

#[test]
fn one_step_of_drift_either_way_is_taken_and_two_are_not() {
    let (w, ann, secret, _) = world();
    // Past the step the enrolment used.
    w.advance(2 * STEP_SECS);
    for drift in [-2, 2] {
        let t = ticket(&w, &ann, Audience::Api);
        let e = second(&w, &t, SecondFactor::Totp(code_at(&secret, &w, drift))).unwrap_err();
        assert!(matches!(e, ApiError::WrongCode { .. }), "{drift}: {e:?}");
    }
    let t = ticket(&w, &ann, Audience::Api);
    second(&w, &t, SecondFactor::Totp(code_at(&secret, &w, -1))).unwrap();
    let t = ticket(&w, &ann, Audience::Api);
    second(&w, &t, SecondFactor::Totp(code_at(&secret, &w, 1))).unwrap();
}

fn wrong_code(w: &World, secret: &TotpSecret) -> TotpCode {
    // A code of no step near now.
    code_at(secret, w, 5)
}

#[test]
fn a_ticket_takes_otp_max_attempts_guesses_then_not_even_the_right_one() {
    let (w, ann, secret, _) = world_with(&[("OTP_MAX_ATTEMPTS", "3")]);
    let t = ticket(&w, &ann, Audience::Api);
    for left in [2, 1] {
        let e = second(&w, &t, SecondFactor::Totp(wrong_code(&w, &secret))).unwrap_err();
        assert_eq!(
            e,
            ApiError::WrongCode {
                attempts_left: left
            }
        );
    }
    let e = second(&w, &t, SecondFactor::Totp(wrong_code(&w, &secret))).unwrap_err();
    assert_eq!(e, ApiError::TooManyAttempts);
    let e = second(&w, &t, SecondFactor::Totp(w.totp_now(&secret))).unwrap_err();
    assert_eq!(e, ApiError::TooManyAttempts);
}

#[test]
fn new_tickets_do_not_refill_the_accounts_budget() {
    // Ten failures lock the account's second step, however many tickets
    // the password buys.
    let (w, ann, secret, _) = world_with(&[("OTP_MAX_ATTEMPTS", "3")]);
    let mut failures = 0;
    let locked = loop {
        let t = ticket(&w, &ann, Audience::Api);
        match second(&w, &t, SecondFactor::Totp(wrong_code(&w, &secret))) {
            Err(ApiError::WrongCode { .. }) => failures += 1,
            Err(ApiError::SecondFactorLocked { retry_after_secs }) => break retry_after_secs,
            other => panic!("{other:?}"),
        }
        assert!(failures < 50, "never locked");
    };
    assert_eq!(failures, 10);
    assert!(locked >= 1);
    // Even the right code waits for the lock.
    let t = ticket(&w, &ann, Audience::Api);
    let e = second(&w, &t, SecondFactor::Totp(w.totp_now(&secret))).unwrap_err();
    assert!(matches!(e, ApiError::SecondFactorLocked { .. }), "{e:?}");
    w.advance(900);
    let t = ticket(&w, &ann, Audience::Api);
    second(&w, &t, SecondFactor::Totp(w.totp_now(&secret))).unwrap();
}

#[test]
fn a_recovery_code_signs_in_once_and_its_owner_is_told() {
    let (w, ann, _, codes) = world();
    assert_eq!(codes.len(), 10);
    let mails = w.mails();
    let t = ticket(&w, &ann, Audience::Api);
    let (_, mail) = block_on(w.svc().login_mfa(
        &t,
        &SecondFactor::Recovery(codes[0].clone()),
        Audience::Api,
    ))
    .unwrap();
    let mail = mail.expect("the owner is told");
    assert!(mail.text.contains("9 of them are left"), "{}", mail.text);
    assert_eq!(w.mails(), mails, "sent after the answer");
    assert!(w.events().contains(&("recovery_code_used", "ok")));
    let t = ticket(&w, &ann, Audience::Api);
    let e = second(&w, &t, SecondFactor::Recovery(codes[0].clone())).unwrap_err();
    assert!(matches!(e, ApiError::WrongCode { .. }), "{e:?}");
    // The next one is still good, on the same ticket.
    second(&w, &t, SecondFactor::Recovery(codes[1].clone())).unwrap();
}

#[test]
fn recovery_codes_are_stored_keyed_and_bound_to_the_account() {
    let (w, ann, _, codes) = world();
    let stored = w.store.recovery_codes.borrow().clone();
    assert_eq!(stored.len(), 10);
    let id = user(&w, &ann).id;
    for c in &codes {
        let raw = c.shown().replace('-', "");
        assert!(stored.iter().all(|(u, d, _)| *u == id && !d.contains(&raw)));
    }
}

#[test]
fn a_browsers_ticket_is_no_apps_and_an_apps_is_no_browsers() {
    let (w, ann, secret, _) = world();
    let t = ticket(&w, &ann, Audience::Browser);
    let e = second(&w, &t, SecondFactor::Totp(w.totp_now(&secret))).unwrap_err();
    assert_eq!(e, ApiError::MfaTokenInvalid);
    let (session, _) = block_on(w.svc().login_mfa(
        &t,
        &SecondFactor::Totp(w.totp_now(&secret)),
        Audience::Browser,
    ))
    .unwrap();
    block_on(w.svc().me(Some(session.token.expose()), Presented::Cookie)).unwrap();
    let t = ticket(&w, &ann, Audience::Api);
    w.advance(STEP_SECS);
    let e = block_on(w.svc().login_mfa(
        &t,
        &SecondFactor::Totp(w.totp_now(&secret)),
        Audience::Browser,
    ))
    .unwrap_err();
    assert_eq!(e, ApiError::MfaTokenInvalid);
}

#[test]
fn a_ticket_expires() {
    let (w, ann, secret, _) = world();
    let t = ticket(&w, &ann, Audience::Api);
    w.advance(super::second_factor::TICKET_TTL_SECS);
    let e = second(&w, &t, SecondFactor::Totp(w.totp_now(&secret))).unwrap_err();
    assert_eq!(e, ApiError::MfaTokenInvalid);
}

#[test]
fn a_password_reset_ends_the_sign_ins_waiting_for_their_second_step_but_not_the_factor() {
    let (w, ann, secret, _) = world();
    let t = ticket(&w, &ann, Audience::Api);
    block_on(async {
        w.keep(w.svc().password_reset(&ann).await.unwrap());
        w.svc()
            .confirm_password_reset(&ann, &w.last_code(), &pw("new password"))
            .await
            .unwrap();
    });
    let e = second(&w, &t, SecondFactor::Totp(w.totp_now(&secret))).unwrap_err();
    assert_eq!(e, ApiError::MfaTokenInvalid);
    // The reset proved the mailbox, not the app: the factor stays.
    let e = block_on(w.svc().login(&ann, &pw("new password"), Audience::Api)).unwrap_err();
    assert!(matches!(e, ApiError::MfaRequired { .. }), "{e:?}");
}

#[test]
fn a_reset_between_the_claim_and_the_session_leaves_no_session() {
    let (w, ann, secret, _) = world();
    let t = ticket(&w, &ann, Audience::Api);
    let svc = w.svc();
    let code = SecondFactor::Totp(w.totp_now(&secret));
    w.store.gate.hold_after("claim_ticket_attempt");
    let mut step = std::pin::pin!(svc.login_mfa(&t, &code, Audience::Api));
    assert!(poll_once(step.as_mut()).is_pending() && w.store.gate.is_holding());
    block_on(async {
        w.keep(svc.password_reset(&ann).await.unwrap());
        svc.confirm_password_reset(&ann, &w.last_code(), &pw("new password"))
            .await
            .unwrap();
    });
    w.store.gate.release();
    assert!(block_on(step).is_err());
    assert!(
        w.store.sessions.borrow().is_empty(),
        "every session is revoked"
    );
}

#[test]
fn two_second_steps_with_one_code_in_flight_make_one_session() {
    let (w, ann, secret, _) = world();
    let (t1, t2) = (
        ticket(&w, &ann, Audience::Api),
        ticket(&w, &ann, Audience::Api),
    );
    let before = w.store.sessions.borrow().len();
    let svc = w.svc();
    let code = SecondFactor::Totp(w.totp_now(&secret));
    w.store.gate.hold_after("claim_ticket_attempt");
    let mut first = std::pin::pin!(svc.login_mfa(&t1, &code, Audience::Api));
    assert!(poll_once(first.as_mut()).is_pending());
    let second_one = block_on(svc.login_mfa(&t2, &code, Audience::Api));
    w.store.gate.release();
    let first_one = block_on(first);
    assert!(second_one.is_ok() != first_one.is_ok(), "exactly one");
    assert_eq!(w.store.sessions.borrow().len(), before + 1);
}

#[test]
fn the_secret_is_stored_sealed_for_its_account_under_its_own_key() {
    let (w, ann, secret, _) = world();
    let id = user(&w, &ann).id;
    let sealed = w.store.totp.borrow()[&id].0.sealed.clone();
    assert!(sealed.starts_with("v1."));
    assert!(!sealed.contains(&secret.base32()));
    // Copied to another account's row, it opens nowhere.
    let bob = Email::parse("bob@example.com").unwrap();
    block_on(async {
        w.svc().register(&bob, &pw(RIGHT)).await.unwrap();
        w.svc()
            .verify_email(&bob, &w.last_code(), &PasswordProof::None)
            .await
            .unwrap();
    });
    let bob_id = user(&w, &bob).id;
    let mut row = w.store.totp.borrow()[&id].clone();
    row.0.confirmed = false;
    w.store.totp.borrow_mut().insert(bob_id.clone(), row);
    let bob_user = user(&w, &bob);
    let e = block_on(w.svc().pending_totp(&bob_user)).unwrap_err();
    assert!(
        matches!(&e, ApiError::Unavailable(d) if d.contains("MFA_ENCRYPTION_KEY")),
        "{e:?}"
    );
    // Under another key, ann's opens nowhere either: 503 naming the key.
    let other = World::new(&[(
        "MFA_ENCRYPTION_KEY",
        "another-key-0123456789abcdef0123456789",
    )]);
    let ann_user = user(&w, &ann);
    let mut pending = w.store.totp.borrow()[&id].clone();
    pending.0.confirmed = false;
    other.store.totp.borrow_mut().insert(id.clone(), pending);
    let e = block_on(other.svc().pending_totp(&ann_user)).unwrap_err();
    assert!(
        matches!(&e, ApiError::Unavailable(d) if d.contains("MFA_ENCRYPTION_KEY")),
        "{e:?}"
    );
}

#[test]
fn without_its_key_two_step_sign_in_fails_closed_naming_it() {
    let w = World::new(&[("MFA_ENCRYPTION_KEY", "")]);
    let ann = Email::parse("ann@example.com").unwrap();
    block_on(async {
        w.svc().register(&ann, &pw(RIGHT)).await.unwrap();
        w.svc()
            .verify_email(&ann, &w.last_code(), &PasswordProof::None)
            .await
            .unwrap();
    });
    let e = block_on(w.svc().begin_totp(&user(&w, &ann))).unwrap_err();
    assert!(
        matches!(&e, ApiError::Unavailable(d) if d.contains("MFA_ENCRYPTION_KEY")),
        "{e:?}"
    );
    let same = World::new(&[("MFA_ENCRYPTION_KEY", "0123456789abcdef0123456789abcdef")]);
    let e = block_on(same.svc().begin_totp(&user(&w, &ann))).unwrap_err();
    assert!(
        matches!(&e, ApiError::Unavailable(d) if d.contains("OTP_PEPPER")),
        "{e:?}"
    );
}

#[test]
fn enrolment_needs_a_right_first_code_and_happens_once() {
    let w = World::new(&[]);
    let ann = Email::parse("ann@example.com").unwrap();
    block_on(async {
        w.svc().register(&ann, &pw(RIGHT)).await.unwrap();
        w.svc()
            .verify_email(&ann, &w.last_code(), &PasswordProof::None)
            .await
            .unwrap();
    });
    let ann_user = user(&w, &ann);
    let e = block_on(
        w.svc()
            .confirm_totp(&ann_user, &TotpCode::parse("123456").unwrap()),
    );
    assert_eq!(e.unwrap_err(), ApiError::TotpNotEnabled);
    let enrolment = block_on(w.svc().begin_totp(&ann_user)).unwrap();
    assert!(enrolment.otpauth_uri.contains(&enrolment.secret.base32()));
    // Pending, it guards nothing.
    block_on(w.svc().login(&ann, &pw(RIGHT), Audience::Api)).unwrap();
    let wrong = code_at(&enrolment.secret, &w, 7);
    assert_eq!(
        block_on(w.svc().confirm_totp(&ann_user, &wrong)).unwrap_err(),
        ApiError::InvalidCode
    );
    let (codes, mail) = block_on(
        w.svc()
            .confirm_totp(&ann_user, &w.totp_now(&enrolment.secret)),
    )
    .unwrap();
    assert_eq!(codes.len(), 10);
    assert!(mail.unwrap().subject.contains("Two-step sign-in is on"));
    assert_eq!(
        block_on(w.svc().begin_totp(&ann_user)).unwrap_err(),
        ApiError::TotpAlreadyEnabled
    );
    assert!(
        block_on(w.svc().pending_totp(&ann_user)).unwrap().is_none(),
        "never shown again"
    );
    assert!(w.events().contains(&("totp_enabled", "ok")));
}

#[test]
fn turning_it_off_needs_a_fresh_code_and_is_told() {
    let (w, ann, secret, codes) = world();
    let ann_user = user(&w, &ann);
    let wrong = SecondFactor::Totp(wrong_code(&w, &secret));
    assert_eq!(
        block_on(w.svc().remove_totp(&ann_user, &wrong)).unwrap_err(),
        ApiError::InvalidCode
    );
    let mail = block_on(
        w.svc()
            .remove_totp(&ann_user, &SecondFactor::Recovery(codes[3].clone())),
    )
    .unwrap()
    .unwrap();
    assert!(mail.subject.contains("turned off"));
    assert!(w.events().contains(&("totp_disabled", "ok")));
    // A password alone signs in again; the recovery codes are gone.
    block_on(w.svc().login(&ann, &pw(RIGHT), Audience::Api)).unwrap();
    assert!(w.store.recovery_codes.borrow().is_empty());
    assert_eq!(
        block_on(
            w.svc()
                .remove_totp(&ann_user, &SecondFactor::Totp(w.totp_now(&secret)))
        )
        .unwrap_err(),
        ApiError::TotpNotEnabled
    );
}

#[test]
fn new_recovery_codes_void_the_old_ones() {
    let (w, ann, secret, old) = world();
    let ann_user = user(&w, &ann);
    let (new, _) = block_on(
        w.svc()
            .replace_recovery_codes(&ann_user, &w.totp_now(&secret)),
    )
    .unwrap();
    // The step is used: the same code makes no more.
    assert_eq!(
        block_on(
            w.svc()
                .replace_recovery_codes(&ann_user, &w.totp_now(&secret))
        )
        .unwrap_err(),
        ApiError::InvalidCode
    );
    let t = ticket(&w, &ann, Audience::Api);
    let e = second(&w, &t, SecondFactor::Recovery(old[0].clone())).unwrap_err();
    assert!(matches!(e, ApiError::WrongCode { .. }), "{e:?}");
    second(&w, &t, SecondFactor::Recovery(new[0].clone())).unwrap();
    assert!(w.events().contains(&("recovery_codes_replaced", "ok")));
}

#[test]
fn every_second_factor_event_is_in_the_audit_trail() {
    for kind in [
        EventKind::MfaRequired,
        EventKind::MfaFailed,
        EventKind::TotpEnabled,
        EventKind::TotpDisabled,
        EventKind::RecoveryCodeUsed,
        EventKind::RecoveryCodesReplaced,
    ] {
        assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
    }
    let (w, ann, secret, _) = world();
    let t = ticket(&w, &ann, Audience::Api);
    let _ = second(&w, &t, SecondFactor::Totp(wrong_code(&w, &secret)));
    assert!(w.events().contains(&("mfa_failed", "invalid_code")));
}

#[test]
fn setting_it_up_needs_a_recent_sign_in() {
    let w = World::new(&[]);
    let ann = Email::parse("ann@example.com").unwrap();
    block_on(async {
        w.svc().register(&ann, &pw(RIGHT)).await.unwrap();
        w.svc()
            .verify_email(&ann, &w.last_code(), &PasswordProof::None)
            .await
            .unwrap();
    });
    let token = w.login_token(&ann, &pw(RIGHT));
    let fresh = block_on(w.svc().recently_signed_in(Some(&token), Presented::Bearer));
    assert_eq!(fresh.unwrap().email, "ann@example.com");
    w.advance(super::second_factor::FRESH_SIGN_IN_SECS + 1);
    let stale = block_on(w.svc().recently_signed_in(Some(&token), Presented::Bearer));
    assert_eq!(stale.unwrap_err(), ApiError::FreshSignInRequired);
    let none = block_on(w.svc().recently_signed_in(Some("nope"), Presented::Bearer));
    assert_eq!(none.unwrap_err(), ApiError::Unauthorized);
}
