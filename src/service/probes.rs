//! Sequence probes of account enumeration: an attacker who knows nothing
//! of an address runs requests of their choosing against it (registering
//! it with a password of their own, signing in with it, asking for codes,
//! guessing codes, waiting) and reads every answer. Each sequence must read
//! the same for an unknown address, one whose sign-up went stale, a
//! verified one, and one whose sign-up is pending (register then
//! log in, register twice, wait then guess).
//!
//! A pending sign-up asked for a code a moment ago, and that request is
//! seen by everyone (its code's clock, the cooldown, the hourly caps) as
//! any request for a code of the address is: it is compared with the other
//! states when someone asked for a verification code of theirs at the
//! same moment (`/v1/resend`, which any client may call for any address).
//! What the attacker may learn is that someone asked; never whether the
//! address has an account.

use super::testkit::World;
use crate::domain::code::Code;
use crate::domain::email::Email;
use crate::domain::password::Password;
use crate::domain::purpose::Purpose;
use crate::domain::registrant::PasswordProof;
use crate::domain::session::Audience;
use crate::error::{ApiError, ApiResult};
use pollster::block_on;

const TTL: u64 = 600;
const ATTACKER: &str = "attacker pw";

#[derive(Debug, Clone, Copy)]
enum Step {
    Register,
    Login,
    /// `/v1/resend` of the verification code.
    Resend,
    /// A wrong guess at the verification code.
    Guess,
    LoginCode,
    PasswordReset,
    Wait(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Unknown,
    Pending,
    Stale,
    Verified,
}

const STATES: [State; 4] = [
    State::Unknown,
    State::Pending,
    State::Stale,
    State::Verified,
];

fn pw(s: &str) -> Password {
    Password::parse(s, 8, "password").unwrap()
}

/// What a client reads of an answer.
fn seen<T>(r: &ApiResult<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(ApiError::WrongCode { attempts_left }) => format!("invalid_code, {attempts_left} left"),
        Err(
            e @ (ApiError::RateLimited { retry_after_secs }
            | ApiError::LoginLocked { retry_after_secs }),
        ) => format!("{} after {retry_after_secs}", e.code()),
        Err(e) => e.code().into(),
    }
}

/// A world where someone else's account for the address is in `state`.
/// With `asked`, a verification code for the address was asked for 61
/// seconds ago: by the sign-up itself when pending, else by a resend.
fn world(state: State, asked: bool, x: &Email) -> World {
    // Caps out of the way: they count sends, which the owner made too.
    let w = World::new(&[("MAX_SENDS_PER_HOUR", "1000")]);
    let svc = w.svc();
    let owner = pw("owner's own pw");
    block_on(async {
        if matches!(state, State::Stale | State::Verified) {
            svc.register(x, &owner).await.unwrap();
        }
        if state == State::Verified {
            let code = w.last_code();
            let proof = PasswordProof::Password(pw("owner's own pw"));
            svc.verify_email(x, &code, &proof).await.unwrap();
        }
        w.after_answer().await;
        w.advance(TTL + 61);
        match state {
            State::Pending => svc.register(x, &owner).await.map(drop).unwrap(),
            _ if asked => svc.resend(x, Purpose::VerifyEmail).await.map(drop).unwrap(),
            _ => {}
        }
        w.after_answer().await;
    });
    w.advance(61);
    w
}

/// Runs `steps` against `x` as the attacker, each followed by what the
/// worker does after its answer; every answer as the attacker reads it.
fn probe(state: State, asked: bool, steps: &[Step]) -> Vec<String> {
    let x = Email::parse("target@example.com").unwrap();
    let w = world(state, asked, &x);
    let svc = w.svc();
    let guess = Code::parse("000000", 6).unwrap();
    let mut answers = vec![];
    for step in steps {
        let answer = block_on(async {
            match step {
                Step::Register => seen(&svc.register(&x, &pw(ATTACKER)).await),
                Step::Login => seen(&svc.login(&x, &pw(ATTACKER), Audience::Api).await),
                Step::Resend => seen(&svc.resend(&x, Purpose::VerifyEmail).await),
                Step::Guess => seen(&svc.verify_email(&x, &guess, &PasswordProof::None).await),
                Step::LoginCode => seen(&svc.login_code(&x).await),
                Step::PasswordReset => seen(&svc.password_reset(&x).await),
                Step::Wait(secs) => {
                    w.advance(*secs);
                    "waited".into()
                }
            }
        });
        block_on(w.after_answer());
        answers.push(answer);
    }
    answers
}

fn same_for_every_state(steps: &[Step]) {
    for asked in [false, true] {
        let unknown = probe(State::Unknown, asked, steps);
        for state in &STATES[1..] {
            if *state == State::Pending && !asked {
                continue;
            }
            assert_eq!(
                probe(*state, asked, steps),
                unknown,
                "{state:?} against unknown (asked: {asked}), {steps:?}"
            );
        }
    }
}

use Step::*;

#[test]
fn register_then_sign_in_with_the_same_password() {
    same_for_every_state(&[Register, Login]);
    same_for_every_state(&[Register, Wait(61), Login, Login, Resend]);
}

#[test]
fn register_then_sign_in_then_guess_as_the_clock_runs() {
    same_for_every_state(&[
        Register,
        Login,
        Guess,
        Wait(TTL / 2),
        Login,
        Guess,
        Wait(TTL / 2),
        Guess,
        Login,
        Guess,
    ]);
}

#[test]
fn register_twice_then_guess() {
    // Past the first code's lifetime, then again: a fresh code everywhere.
    same_for_every_state(&[Register, Wait(TTL + 1), Register, Guess]);
    // Within it: the second registration moves no clock.
    same_for_every_state(&[Register, Wait(TTL / 2), Register, Wait(TTL / 2 + 1), Guess]);
    same_for_every_state(&[
        Register,
        Wait(61),
        Register,
        Guess,
        Guess,
        Guess,
        Guess,
        Guess,
        Guess,
    ]);
}

#[test]
fn sign_in_first_then_register_then_guess() {
    same_for_every_state(&[
        Login,
        Register,
        Guess,
        Wait(TTL - 10),
        Guess,
        Wait(20),
        Guess,
    ]);
    same_for_every_state(&[Resend, Register, Wait(TTL - 5), Guess, Wait(10), Guess]);
}

#[test]
fn a_lockout_comes_at_the_same_failure_for_every_address() {
    let mut steps = vec![Register];
    steps.extend([Login; 11]);
    steps.extend([Wait(900), Login, Login]);
    same_for_every_state(&steps);
}

#[test]
fn the_other_code_flows_as_well() {
    same_for_every_state(&[
        Register,
        Login,
        LoginCode,
        PasswordReset,
        Wait(61),
        Resend,
        Guess,
    ]);
}

/// The probes can fail: a difference in any answer shows.
#[test]
fn a_probe_sees_a_difference_where_there_is_one() {
    // A code asked for a moment ago is seen (its clock), as it should be.
    let steps = [Register, Wait(TTL - 30), Guess];
    assert_ne!(
        probe(State::Unknown, false, &steps),
        probe(State::Unknown, true, &steps)
    );
    // The owner's own password on their pending sign-up is no attacker's
    // guess: the same answer, but the owner gets a fresh code, after it.
    let x = Email::parse("target@example.com").unwrap();
    let w = world(State::Pending, true, &x);
    let svc = w.svc();
    let before = w.mails();
    assert_eq!(
        block_on(svc.login(&x, &pw("owner's own pw"), Audience::Api)).unwrap_err(),
        ApiError::InvalidCredentials
    );
    assert_eq!(w.mails(), before, "nothing before the answer");
    block_on(w.after_answer());
    assert_eq!(w.mails(), before + 1, "the owner gets a fresh code");
}
