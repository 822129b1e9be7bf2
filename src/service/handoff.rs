//! The hand-off from the hosted pages to an app: after a sign-in that an
//! app asked for, the browser returns to the app with a one-time code, and
//! the app's backend trades it, with its API key, for a session of its own
//! (`/v1/auth/exchange`). Shaped like OAuth's authorization-code grant
//! with PKCE, so it feels familiar and its defences are well understood.

use super::{LoginSession, Service};
use crate::domain::audit::{Event, EventKind};
use crate::domain::code::CORE_SCOPE;
use crate::domain::handoff::HANDOFF_TTL_SECS;
use crate::domain::return_to::Handoff;
use crate::domain::session::{token_hash, Audience, Token};
use crate::error::{ApiError, ApiResult};
use crate::http::requests::HandoffExchange;
use crate::ports::clock::Clock;
use crate::ports::limits::Counters;
use crate::ports::store::{Exchange, NewHandoff, Store, User};
use crate::providers::mail::Mailer;
use crate::providers::text::Texter;

impl<S: Store, K: Counters, M: Mailer, T: Texter, C: Clock> Service<'_, S, K, M, T, C> {
    /// Where a browser signed in with `session_token` goes next: the app's
    /// `return_to` with a fresh hand-off code and its `state`, or `None`
    /// when no app asked. The code is bound to that exact `return_to` (as
    /// OAuth binds a code to its `redirect_uri`: a code sent to another path
    /// of the app's origin, one that might leak it, cannot be traded by the
    /// app's real callback), the challenge, and this browser session: ending the session (sign-out,
    /// password reset) before the exchange leaves it worth nothing.
    pub async fn hand_off(
        &self,
        session_token: &str,
        handoff: &Handoff,
    ) -> ApiResult<Option<String>> {
        let Some(return_to) = &handoff.return_to else {
            return Ok(None);
        };
        let code = Token::generate()?;
        let now = self.clock.now();
        let filed = self
            .store
            .file_handoff(&NewHandoff {
                code_hash: &token_hash(code.expose()),
                session_hash: &token_hash(session_token),
                return_to: return_to.url(),
                challenge: handoff.challenge.as_ref().map(|c| c.as_str()),
                now,
                expires_at: now + HANDOFF_TTL_SECS,
            })
            .await?;
        if !filed {
            return Err(ApiError::Unauthorized);
        }
        let mut params = vec![("code", code.expose())];
        if let Some(state) = &handoff.state {
            params.push(("state", state));
        }
        Ok(Some(return_to.with(&params)))
    }

    /// `/v1/auth/exchange`: one transaction checks the key, spends the
    /// code and creates the session. A wrong key spends nothing (and is
    /// `Unauthorized`, for the caller to refuse as it refuses any key); a
    /// known code is spent by its first exchange, right or wrong, so a
    /// stolen code cannot be tried twice.
    pub async fn exchange_handoff(
        &self,
        bearer: &str,
        req: &HandoffExchange,
    ) -> ApiResult<(User, LoginSession)> {
        let now = self.clock.now();
        let (session, new_session) = self.new_session(now, Audience::App, "otp")?;
        let challenge = req.verifier.as_ref().map(|v| v.challenge());
        let done = self
            .store
            .exchange_handoff(&Exchange {
                key_hash: &token_hash(bearer),
                code_hash: &token_hash(&req.code),
                return_to: &req.return_to,
                challenge: challenge.as_ref().map(|c| c.as_str()),
                session: &new_session,
            })
            .await?;
        if !done.key_ok {
            return Err(ApiError::Unauthorized);
        }
        let result = match (done.spent, done.user) {
            (Some(_), Some(user)) => Ok((user, session)),
            (None, _) => Err(ApiError::InvalidCode),
            (Some(spent), None) => Err(if spent.expires_at <= now {
                ApiError::ExpiredCode
            } else if spent.return_to != req.return_to {
                ApiError::ReturnToMismatch
            } else if spent.challenge.as_deref() != challenge.as_ref().map(|c| c.as_str()) {
                ApiError::InvalidCodeVerifier
            } else {
                // Its browser session ended before the exchange.
                ApiError::InvalidCode
            }),
        };
        let (kind, outcome) = match &result {
            Ok(_) => (EventKind::LoginOk, "ok"),
            Err(e) => (EventKind::LoginFailed, e.code()),
        };
        self.audit.record(Event {
            scope: Some(CORE_SCOPE.to_owned()),
            purpose: Some("handoff".to_owned()),
            address_hash: match &result {
                Ok((user, _)) => self.address_hash(&user.email),
                Err(_) => None,
            },
            ..Event::new(kind, outcome)
        });
        result
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::email::Email;
    use crate::domain::handoff::{CodeChallenge, CodeVerifier, HANDOFF_TTL_SECS};
    use crate::domain::password::Password;
    use crate::domain::registrant::PasswordProof;
    use crate::domain::return_to::{Handoff, ReturnOrigins, ReturnTo};
    use crate::domain::session::Presented;
    use crate::error::ApiError;
    use crate::http::requests::HandoffExchange;
    use crate::service::testkit::{World, ADMIN};
    use pollster::block_on;

    const APP: &str = "https://app.example.com";
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    fn ann() -> Email {
        Email::parse("ann@example.com").unwrap()
    }

    fn pw() -> Password {
        Password::parse("correct horse", 8, "password").unwrap()
    }

    /// A world with ann verified and signed in on the pages; her browser's
    /// session token.
    fn signed_in() -> (World, String) {
        let w = World::new(&[]);
        block_on(async {
            w.svc().register(&ann(), &pw()).await.unwrap();
            w.svc()
                .verify_email(&ann(), &w.last_code(), &PasswordProof::None)
                .await
                .unwrap();
        });
        let token = w.browser_token(&ann(), &pw());
        (w, token)
    }

    fn handoff(challenge: Option<&str>) -> Handoff {
        let origins = ReturnOrigins::parse(APP, true).unwrap();
        Handoff {
            return_to: ReturnTo::parse(&format!("{APP}/cb"), &origins),
            state: Some("xyz".into()),
            challenge: challenge.map(|c| CodeChallenge::parse(c, Some("S256")).unwrap()),
        }
    }

    /// ann resets her password, which ends every session of hers.
    fn reset_password(w: &World) {
        let svc = w.svc();
        block_on(async {
            w.keep(svc.password_reset(&ann()).await.unwrap());
            let new = Password::parse("battery staple", 8, "password").unwrap();
            svc.confirm_password_reset(&ann(), &w.last_code(), &new)
                .await
                .unwrap();
        });
    }

    /// Hands ann's browser session off; the code from the redirect.
    fn code(w: &World, token: &str, h: &Handoff) -> String {
        let to = block_on(w.svc().hand_off(token, h)).unwrap().unwrap();
        assert!(
            to.starts_with(&format!("{APP}/cb?code=")) && to.ends_with("&state=xyz"),
            "{to}"
        );
        to.split("code=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_owned()
    }

    fn exchange(code: &str, origin: &str, verifier: Option<&str>) -> HandoffExchange {
        HandoffExchange {
            code: code.into(),
            return_to: format!("{origin}/cb"),
            verifier: verifier.map(|v| CodeVerifier::parse(v).unwrap()),
        }
    }

    #[test]
    fn a_code_is_traded_once_for_a_session_of_its_account() {
        let (w, token) = signed_in();
        let (_, key) = w.api_key(&["email"]);
        let code = code(&w, &token, &handoff(None));
        let svc = w.svc();
        block_on(async {
            let (user, session) = svc
                .exchange_handoff(&key, &exchange(&code, APP, None))
                .await
                .unwrap();
            assert_eq!(
                (user.email.as_str(), user.verified),
                ("ann@example.com", true)
            );
            let me = svc
                .me(Some(session.token.expose()), Presented::Bearer)
                .await
                .unwrap();
            assert_eq!(me.email, "ann@example.com");
            assert_ne!(
                session.token.expose(),
                token,
                "the app gets a session of its own"
            );
            assert_eq!(
                svc.exchange_handoff(&key, &exchange(&code, APP, None))
                    .await
                    .unwrap_err(),
                ApiError::InvalidCode
            );
        });
        assert!(w.store.handoffs.borrow().is_empty());
    }

    #[test]
    fn a_wrong_or_revoked_key_spends_nothing() {
        let (w, token) = signed_in();
        let (revoked, revoked_secret) = w.api_key(&["email"]);
        let (_, key) = w.api_key(&["email"]);
        let code = code(&w, &token, &handoff(None));
        let svc = w.svc();
        block_on(async {
            svc.revoke_api_key(ADMIN, &revoked.id).await.unwrap();
            for wrong in ["otp_live_not-a-key", revoked_secret.as_str()] {
                assert_eq!(
                    svc.exchange_handoff(wrong, &exchange(&code, APP, None))
                        .await
                        .unwrap_err(),
                    ApiError::Unauthorized
                );
            }
            assert!(svc
                .exchange_handoff(&key, &exchange(&code, APP, None))
                .await
                .is_ok());
        });
    }

    #[test]
    fn a_code_lives_sixty_seconds() {
        let (w, token) = signed_in();
        let (_, key) = w.api_key(&["email"]);
        let code = code(&w, &token, &handoff(None));
        w.advance(HANDOFF_TTL_SECS);
        assert_eq!(
            block_on(w.svc().exchange_handoff(&key, &exchange(&code, APP, None))).unwrap_err(),
            ApiError::ExpiredCode
        );
        assert!(
            w.store.handoffs.borrow().is_empty(),
            "an expired code is spent too"
        );
    }

    #[test]
    fn a_wrong_origin_or_verifier_spends_the_code() {
        let (w, token) = signed_in();
        let (_, key) = w.api_key(&["email"]);
        let challenge = CodeVerifier::parse(VERIFIER).unwrap().challenge();
        let with_pkce = handoff(Some(challenge.as_str()));
        let other = "a".repeat(43);
        let svc = w.svc();
        for (h, x, refused) in [
            (
                handoff(None),
                exchange("", "https://evil.example", None),
                ApiError::ReturnToMismatch,
            ),
            (
                handoff(None),
                exchange("", APP, Some(VERIFIER)),
                ApiError::InvalidCodeVerifier,
            ),
            (
                with_pkce.clone(),
                exchange("", APP, None),
                ApiError::InvalidCodeVerifier,
            ),
            (
                with_pkce.clone(),
                exchange("", APP, Some(&other)),
                ApiError::InvalidCodeVerifier,
            ),
        ] {
            let code = code(&w, &token, &h);
            let x = HandoffExchange {
                code: code.clone(),
                ..x
            };
            assert_eq!(
                block_on(svc.exchange_handoff(&key, &x)).unwrap_err(),
                refused
            );
            let right = exchange(&code, APP, h.challenge.is_some().then_some(VERIFIER));
            assert_eq!(
                block_on(svc.exchange_handoff(&key, &right)).unwrap_err(),
                ApiError::InvalidCode,
                "a refused exchange spends the code"
            );
        }
        let code = code(&w, &token, &with_pkce);
        assert!(
            block_on(svc.exchange_handoff(&key, &exchange(&code, APP, Some(VERIFIER)))).is_ok()
        );
    }

    #[test]
    fn a_code_sent_to_another_path_of_the_app_cannot_be_traded_at_its_callback() {
        let (w, token) = signed_in();
        let (_, key) = w.api_key(&["email"]);
        let origins = ReturnOrigins::parse(APP, true).unwrap();
        let leaky = Handoff {
            return_to: ReturnTo::parse(&format!("{APP}/forum/post"), &origins),
            ..handoff(None)
        };
        let to = block_on(w.svc().hand_off(&token, &leaky)).unwrap().unwrap();
        let code = to.split("code=").nth(1).unwrap().split('&').next().unwrap();
        assert_eq!(
            block_on(w.svc().exchange_handoff(&key, &exchange(code, APP, None))).unwrap_err(),
            ApiError::ReturnToMismatch
        );
    }

    #[test]
    fn ending_the_browser_session_first_leaves_the_code_worthless() {
        let (w, token) = signed_in();
        let (_, key) = w.api_key(&["email"]);
        let svc = w.svc();
        let code1 = code(&w, &token, &handoff(None));
        block_on(svc.logout(Some(&token), Presented::Cookie)).unwrap();
        assert_eq!(
            block_on(svc.exchange_handoff(&key, &exchange(&code1, APP, None))).unwrap_err(),
            ApiError::InvalidCode
        );
        assert_eq!(
            block_on(svc.hand_off(&token, &handoff(None))).unwrap_err(),
            ApiError::Unauthorized,
            "an ended session hands nothing off"
        );
        // A password reset ends every session, the browser's included.
        w.after_answer_now();
        w.advance(61);
        let token = w.browser_token(&ann(), &pw());
        let code2 = code(&w, &token, &handoff(None));
        reset_password(&w);
        assert_eq!(
            block_on(svc.exchange_handoff(&key, &exchange(&code2, APP, None))).unwrap_err(),
            ApiError::InvalidCode
        );
    }

    #[test]
    fn a_reset_after_the_exchange_revokes_the_apps_session_too() {
        let (w, token) = signed_in();
        let (_, key) = w.api_key(&["email"]);
        let svc = w.svc();
        let code = code(&w, &token, &handoff(None));
        let (_, app_session) =
            block_on(svc.exchange_handoff(&key, &exchange(&code, APP, None))).unwrap();
        w.after_answer_now();
        w.advance(61);
        reset_password(&w);
        block_on(async {
            assert_eq!(
                svc.me(Some(app_session.token.expose()), Presented::Bearer)
                    .await
                    .unwrap_err(),
                ApiError::Unauthorized
            );
        });
    }

    #[test]
    fn no_app_no_handoff() {
        let (w, token) = signed_in();
        assert_eq!(
            block_on(w.svc().hand_off(&token, &Handoff::default())),
            Ok(None)
        );
        assert!(w.store.handoffs.borrow().is_empty());
    }

    #[test]
    fn only_a_browsers_session_is_taken_from_the_cookie_or_earns_a_code() {
        let (w, browser) = signed_in();
        let (_, key) = w.api_key(&["email"]);
        let svc = w.svc();
        // The app's session from an exchange, and one from `/v1/login`.
        let code = code(&w, &browser, &handoff(None));
        let (_, app) = block_on(svc.exchange_handoff(&key, &exchange(&code, APP, None))).unwrap();
        let app = app.token.expose().to_owned();
        let api = w.login_token(&ann(), &pw());
        for token in [&app, &api] {
            // Each works as the bearer it was issued as...
            block_on(svc.me(Some(token), Presented::Bearer)).unwrap();
            // ...and as a cookie is no session at all: no account, no
            // hand-off code for another app, nothing to sign out.
            assert_eq!(
                block_on(svc.me(Some(token), Presented::Cookie)).unwrap_err(),
                ApiError::Unauthorized
            );
            assert_eq!(
                block_on(svc.hand_off(token, &handoff(None))).unwrap_err(),
                ApiError::Unauthorized
            );
            assert_eq!(
                block_on(svc.logout(Some(token), Presented::Cookie)).unwrap_err(),
                ApiError::Unauthorized
            );
        }
        // The browser's session is no bearer token either.
        assert_eq!(
            block_on(svc.me(Some(&browser), Presented::Bearer)).unwrap_err(),
            ApiError::Unauthorized
        );
        // Signing out of the pages ends the browser's session, not the apps'.
        block_on(svc.logout(Some(&browser), Presented::Cookie)).unwrap();
        block_on(svc.me(Some(&app), Presented::Bearer)).unwrap();
        block_on(svc.me(Some(&api), Presented::Bearer)).unwrap();
        assert!(w.store.handoffs.borrow().is_empty());
        // The exchange's session names the key it was issued to.
        let issued_to: Vec<String> = w
            .store
            .sessions
            .borrow()
            .values()
            .map(|s| s.2.clone())
            .collect();
        assert!(
            issued_to.contains(&format!("key:{}", w.store.keys.borrow()[0].1.id)),
            "{issued_to:?}"
        );
    }
}
