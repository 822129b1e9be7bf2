//! The budget of failed password sign-ins per address
//! (`domain::sign_in_budget`), through the sign-in flow: counted before the
//! password is compared, for unknown addresses alike, reset by a success
//! and by a password reset; past it, 429 whatever the password, while code
//! sign-in and password reset stay open.

use super::testkit::World;
use crate::domain::channel::Channel;
use crate::domain::code::{CodeKey, CORE_SCOPE};
use crate::domain::email::Email;
use crate::domain::password::{Password, ARGON2_RUNS};
use crate::domain::registrant::PasswordProof;
use crate::domain::session::Audience;
use crate::error::{ApiError, ApiResult};
use crate::ports::store::{AccountStore, NewCode, PasswordAttempt};
use crate::service::LoginSession;
use pollster::block_on;

fn pw(s: &str) -> Password {
    Password::parse(s, 8, "password").unwrap()
}

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

const RIGHT: &str = "correct horse";

/// A world with ann verified.
fn world() -> (World, Email) {
    let w = World::new(&[("RESEND_COOLDOWN_SECONDS", "0")]);
    let ann = email("ann@example.com");
    block_on(async {
        w.svc().register(&ann, &pw(RIGHT)).await.unwrap();
        let code = w.last_code();
        w.svc()
            .verify_email(&ann, &code, &PasswordProof::None)
            .await
            .unwrap();
    });
    (w, ann)
}

fn login(w: &World, who: &Email, password: &str) -> ApiResult<LoginSession> {
    block_on(w.svc().login(who, &pw(password), Audience::Api))
}

fn fail(w: &World, who: &Email, n: usize) {
    for i in 0..n {
        assert_eq!(
            login(w, who, "wrong horse").unwrap_err(),
            ApiError::InvalidCredentials,
            "failure {i}"
        );
    }
}

#[test]
fn ten_failures_lock_the_address_whatever_the_password_for_unknown_ones_alike() {
    let (w, ann) = world();
    let ghost = email("ghost@example.com");
    for who in [&ann, &ghost] {
        fail(&w, who, 10);
        ARGON2_RUNS.with(|r| r.set(0));
        for password in ["wrong horse", RIGHT] {
            assert_eq!(
                login(&w, who, password).unwrap_err(),
                ApiError::LoginLocked {
                    retry_after_secs: 900
                },
                "{who:?}"
            );
        }
        assert_eq!(
            ARGON2_RUNS.with(|r| r.get()),
            0,
            "a locked address costs no hash"
        );
    }
    // The lock ends; the next failure locks for twice as long.
    w.advance(900);
    fail(&w, &ann, 1);
    assert_eq!(
        login(&w, &ann, RIGHT).unwrap_err(),
        ApiError::LoginLocked {
            retry_after_secs: 1_800
        }
    );
    w.advance(1_800);
    login(&w, &ann, RIGHT).unwrap();
}

#[test]
fn a_success_resets_the_count() {
    let (w, ann) = world();
    fail(&w, &ann, 9);
    login(&w, &ann, RIGHT).unwrap();
    fail(&w, &ann, 9);
    login(&w, &ann, RIGHT).unwrap();
}

#[test]
fn sign_ins_in_flight_count_before_their_passwords_are_compared() {
    let (w, ann) = world();
    // Ten sign-ins have claimed their attempt and not yet compared: the
    // right password, arriving next, is refused.
    let pepper = w.cfg.pepper().unwrap();
    let tag = pepper.address_tag(ann.as_str());
    let now = w.clock.0.get();
    for _ in 0..10 {
        let attempt = PasswordAttempt {
            email: &ann,
            address_hash: &tag,
            decoy_seed: 0,
            budget: w.cfg.sign_in_budget,
            now,
            decoy_code: NewCode {
                id: "decoy",
                key: CodeKey {
                    scope: CORE_SCOPE,
                    channel: Channel::Email,
                    purpose: "verify_email",
                    address: ann.as_str(),
                },
                digest: "00",
                now,
                expires_at: now + 600,
                test: false,
            },
            attempts_window_secs: 600,
        };
        let start = block_on((&w.store).begin_password_login(&attempt)).unwrap();
        assert_eq!(start.locked_for, None);
    }
    assert!(matches!(
        login(&w, &ann, RIGHT).unwrap_err(),
        ApiError::LoginLocked { .. }
    ));
}

#[test]
fn code_sign_in_and_password_reset_stay_open_and_a_reset_forgets_the_failures() {
    let (w, ann) = world();
    fail(&w, &ann, 10);
    let svc = w.svc();
    block_on(async {
        w.keep(svc.login_code(&ann).await.unwrap());
        svc.login_with_code(&ann, &w.last_code(), Audience::Api)
            .await
            .unwrap();
        w.keep(svc.password_reset(&ann).await.unwrap());
        svc.confirm_password_reset(&ann, &w.last_code(), &pw("new horse 1"))
            .await
            .unwrap();
    });
    login(&w, &ann, "new horse 1").unwrap();
}

#[test]
fn the_budget_is_configurable_and_the_window_forgets() {
    let w = World::new(&[
        ("LOGIN_MAX_FAILURES", "3"),
        ("LOGIN_FAILURE_WINDOW_SECONDS", "60"),
    ]);
    let ghost = email("ghost@example.com");
    fail(&w, &ghost, 2);
    w.advance(60);
    // A quiet window: the count started over.
    fail(&w, &ghost, 3);
    assert_eq!(
        login(&w, &ghost, "x wrong pw").unwrap_err(),
        ApiError::LoginLocked {
            retry_after_secs: 60
        }
    );
}
