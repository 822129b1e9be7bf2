//! Account pre-hijacking, interleaved: a squatter registers the owner's
//! address with a password of their own, before or after the owner does.
//! Whatever the order, once the owner proves the address with any code
//! from their inbox, the squatter's password signs in nowhere. The
//! uncontested flow (one sign-up, its code, then sign-in) keeps the
//! password with the code alone.

use super::testkit::{TestService, World};
use crate::domain::email::Email;
use crate::domain::password::Password;
use crate::domain::purpose::Purpose;
use crate::domain::registrant::PasswordProof;
use crate::domain::session::Audience;
use crate::error::ApiError;
use pollster::block_on;

const SQUATTER: &str = "squatter pw";
const OWNER: &str = "owner pw 12";

fn pw(s: &str) -> Password {
    Password::parse(s, 8, "password").unwrap()
}

fn victim() -> Email {
    Email::parse("victim@example.com").unwrap()
}

fn world() -> World {
    World::new(&[("RESEND_COOLDOWN_SECONDS", "0")])
}

fn signs_in(svc: &TestService<'_>, password: &str) -> bool {
    match block_on(svc.login(&victim(), &pw(password), Audience::Api)) {
        Ok(_) => true,
        Err(ApiError::InvalidCredentials) => false,
        Err(e) => panic!("{e:?}"),
    }
}

/// Every proof the owner's request may bring: none, their password, or
/// the registrant token their own sign-up gave their browser (a cookie of
/// the worker's origin only, which no other site can set).
fn proofs(owner_token: &str) -> Vec<PasswordProof> {
    vec![
        PasswordProof::None,
        PasswordProof::Password(pw(OWNER)),
        PasswordProof::Registrant(vec![owner_token.into()]),
    ]
}

#[test]
fn squatter_first_the_owners_code_never_keeps_the_squatters_password() {
    for i in 0..3 {
        let w = world();
        let svc = w.svc();
        block_on(svc.register(&victim(), &pw(SQUATTER))).unwrap();
        // The only code in the owner's inbox is the squatter's sign-up's.
        let code = w.last_code();
        let owner_token = block_on(svc.register(&victim(), &pw(OWNER))).unwrap();
        assert!(w.last_mail().subject.contains("already waiting"));
        let proof = proofs(&owner_token).remove(i);
        let kept = block_on(svc.verify_email(&victim(), &code, &proof)).unwrap();
        assert!(!kept, "proof {i}: the contested code keeps nothing");
        assert!(!signs_in(&svc, SQUATTER), "proof {i}");
        assert!(!signs_in(&svc, OWNER), "proof {i}");
        assert!(w.user("victim@example.com").unwrap().verified);
    }
}

/// The limits never swallow a contest: an owner whose sign-up the cooldown
/// or a filled hourly cap stops (the squatter can fill it without a mail
/// reaching the owner, with resets of an unknown alias) still contests the
/// address, so the only code in the inbox keeps nothing.
#[test]
fn a_sign_up_the_limits_stop_still_contests_the_address() {
    let worlds = [
        // The squatter's cooldown still runs when the owner signs up.
        World::new(&[("RESEND_COOLDOWN_SECONDS", "60")]),
        // The squatter fills the mailbox's hourly cap first.
        World::new(&[
            ("RESEND_COOLDOWN_SECONDS", "0"),
            ("MAX_SENDS_PER_HOUR", "2"),
        ]),
    ];
    for (i, w) in worlds.iter().enumerate() {
        let svc = w.svc();
        block_on(svc.register(&victim(), &pw(SQUATTER))).unwrap();
        w.after_answer_now();
        let code = w.last_code();
        let mails = w.mails();
        if i == 1 {
            let alias = Email::parse("victim+x@example.com").unwrap();
            block_on(svc.password_reset(&alias)).unwrap();
            w.after_answer_now();
        }
        let owner_token = block_on(svc.register(&victim(), &pw(OWNER))).unwrap();
        assert_eq!(
            w.mails(),
            mails,
            "world {i}: the owner's sign-up sent nothing"
        );
        let kept = block_on(svc.verify_email(
            &victim(),
            &code,
            &PasswordProof::Registrant(vec![owner_token]),
        ))
        .unwrap();
        assert!(!kept, "world {i}: the squatter's code keeps nothing");
        assert!(!signs_in(&svc, SQUATTER), "world {i}");
    }
}

#[test]
fn owner_first_a_contested_code_keeps_the_password_only_with_a_proof() {
    for (i, keeps) in [false, true, true].into_iter().enumerate() {
        let w = world();
        let svc = w.svc();
        let owner_token = block_on(svc.register(&victim(), &pw(OWNER))).unwrap();
        let code = w.last_code();
        block_on(svc.register(&victim(), &pw(SQUATTER))).unwrap();
        let proof = proofs(&owner_token).remove(i);
        assert_eq!(
            block_on(svc.verify_email(&victim(), &code, &proof)),
            Ok(keeps),
            "proof {i}"
        );
        assert_eq!(signs_in(&svc, OWNER), keeps, "proof {i}");
        assert!(!signs_in(&svc, SQUATTER), "proof {i}");
    }
}

#[test]
fn a_stale_sign_up_replaced_by_the_squatter_is_contested_too() {
    // The owner signed up long ago and never verified; the squatter signs
    // up again, and the owner, who did sign up, types the code that comes.
    let w = world();
    let svc = w.svc();
    let owner_token = block_on(svc.register(&victim(), &pw(OWNER))).unwrap();
    w.advance(601);
    block_on(svc.register(&victim(), &pw(SQUATTER))).unwrap();
    let proof = PasswordProof::Registrant(vec![owner_token]);
    assert_eq!(
        block_on(svc.verify_email(&victim(), &w.last_code(), &proof)),
        Ok(false)
    );
    assert!(!signs_in(&svc, SQUATTER) && !signs_in(&svc, OWNER));
    // The other way round: the owner's sign-up replaces the squatter's
    // stale one, and the owner's browser proves it.
    let w = world();
    let svc = w.svc();
    block_on(svc.register(&victim(), &pw(SQUATTER))).unwrap();
    w.advance(601);
    let owner_token = block_on(svc.register(&victim(), &pw(OWNER))).unwrap();
    let proof = PasswordProof::Registrant(vec!["00".repeat(32), owner_token]);
    assert_eq!(
        block_on(svc.verify_email(&victim(), &w.last_code(), &proof)),
        Ok(true)
    );
    assert!(signs_in(&svc, OWNER) && !signs_in(&svc, SQUATTER));
}

#[test]
fn the_squatters_sign_in_renewal_is_no_way_around_the_contest() {
    // The squatter signs in with their password: a fresh code, bound to
    // it, goes to the owner's inbox. The owner, who signed up too, types it.
    let w = world();
    let svc = w.svc();
    block_on(svc.register(&victim(), &pw(SQUATTER))).unwrap();
    block_on(svc.register(&victim(), &pw(OWNER))).unwrap();
    assert!(!signs_in(&svc, SQUATTER));
    block_on(w.after_answer());
    let code = w.last_code();
    assert_eq!(
        block_on(svc.verify_email(&victim(), &code, &PasswordProof::None)),
        Ok(false)
    );
    assert!(!signs_in(&svc, SQUATTER));
}

#[test]
fn uncontested_the_code_alone_keeps_the_password() {
    let w = world();
    let svc = w.svc();
    block_on(svc.register(&victim(), &pw(OWNER))).unwrap();
    assert_eq!(
        block_on(svc.verify_email(&victim(), &w.last_code(), &PasswordProof::None)),
        Ok(true)
    );
    assert!(signs_in(&svc, OWNER));
}

#[test]
fn a_resent_code_keeps_the_password_only_with_a_proof() {
    for (proof, keeps) in [
        (PasswordProof::None, false),
        (PasswordProof::Password(pw(OWNER)), true),
        (PasswordProof::Password(pw("not the owner's")), false),
    ] {
        let w = world();
        let svc = w.svc();
        block_on(svc.register(&victim(), &pw(OWNER))).unwrap();
        w.keep(block_on(svc.resend(&victim(), Purpose::VerifyEmail)).unwrap());
        assert_eq!(
            block_on(svc.verify_email(&victim(), &w.last_code(), &proof)),
            Ok(keeps),
            "{proof:?}"
        );
        assert_eq!(signs_in(&svc, OWNER), keeps);
    }
}

#[test]
fn a_sign_in_after_the_code_expired_still_mails_a_fresh_one() {
    let w = world();
    let svc = w.svc();
    block_on(svc.register(&victim(), &pw(OWNER))).unwrap();
    w.advance(601);
    let before = w.mails();
    assert!(!signs_in(&svc, OWNER));
    block_on(w.after_answer());
    assert_eq!(w.mails(), before + 1, "a fresh code, by mail");
    assert_eq!(
        block_on(svc.verify_email(&victim(), &w.last_code(), &PasswordProof::None)),
        Ok(true)
    );
    assert!(signs_in(&svc, OWNER));
}

/// The pages' verification signs in the browser that signed up, and only
/// it: in the same transaction as the verification, only when the
/// browser's registrant token proves the password the account keeps. A
/// browser session, never a token an app could use.
#[test]
fn only_the_browser_that_signed_up_is_signed_in_by_its_code() {
    use crate::domain::session::Presented;
    use crate::service::Verified;
    // The uncontested sign-up, in its own browser.
    let w = world();
    let svc = w.svc();
    let token = block_on(svc.register(&victim(), &pw(OWNER))).unwrap();
    let verified = block_on(svc.verify_email_in_browser(&victim(), &w.last_code(), vec![token]));
    let Ok(Verified::SignedIn(session)) = verified else {
        panic!("{verified:?}")
    };
    let me = block_on(svc.me(Some(session.token.expose()), Presented::Cookie)).unwrap();
    assert!(me.verified && me.email == victim().as_str());
    assert!(block_on(svc.me(Some(session.token.expose()), Presented::Bearer)).is_err());
    // The same code typed in another browser: verified, nobody signed in.
    let w = world();
    let svc = w.svc();
    block_on(svc.register(&victim(), &pw(OWNER))).unwrap();
    let verified = block_on(svc.verify_email_in_browser(&victim(), &w.last_code(), vec![]));
    assert!(
        matches!(verified, Ok(Verified::PasswordKept)),
        "{verified:?}"
    );
    assert!(w.store.sessions.borrow().is_empty());
    assert!(signs_in(&svc, OWNER));
    // Squatter first: the owner's browser proves nothing about the
    // squatter's password, so nobody is signed in.
    let w = world();
    let svc = w.svc();
    block_on(svc.register(&victim(), &pw(SQUATTER))).unwrap();
    let code = w.last_code();
    let owner_token = block_on(svc.register(&victim(), &pw(OWNER))).unwrap();
    let verified = block_on(svc.verify_email_in_browser(&victim(), &code, vec![owner_token]));
    assert!(
        matches!(verified, Ok(Verified::PasswordDropped)),
        "{verified:?}"
    );
    assert!(w.store.sessions.borrow().is_empty());
    assert!(!signs_in(&svc, SQUATTER));
    // Owner first, contested by the squatter: the owner's browser proves
    // the owner's password, and is signed in.
    let w = world();
    let svc = w.svc();
    let owner_token = block_on(svc.register(&victim(), &pw(OWNER))).unwrap();
    let code = w.last_code();
    block_on(svc.register(&victim(), &pw(SQUATTER))).unwrap();
    let verified = block_on(svc.verify_email_in_browser(&victim(), &code, vec![owner_token]));
    assert!(
        matches!(verified, Ok(Verified::SignedIn(_))),
        "{verified:?}"
    );
    assert!(!signs_in(&svc, SQUATTER) && signs_in(&svc, OWNER));
}
