//! The pages of second factors on the Workers side: a sign-in's second
//! step, and an account setting up, renewing or turning off its
//! authenticator app. The same flows as `/v1/login/mfa` and `/v1/me/totp`,
//! with the browser's session cookie and tickets issued to browsers only.

use super::{clear_cookie, deliver_later, shown_in_place, Answer, Page, SESSION_COOKIE};
use crate::domain::recovery_code::{RecoveryCode, SecondFactor};
use crate::domain::session::{Audience, Presented};
use crate::domain::totp::TotpCode;
use crate::error::{ApiError, ApiResult};
use crate::pages::auth::{self, Notice};
use crate::pages::browser::Form;
use crate::pages::factors::{self, TotpSetupView, MFA_PATH};
use crate::pages::layout::Alert;
use crate::ports::store::User;
use crate::service::TotpEnrolment;

impl Page<'_, '_> {
    /// The second step's page for the ticket `mfa_token`.
    pub(super) fn second_step_page(
        &mut self,
        mfa_token: &str,
        status: u16,
        alert: Option<Alert>,
    ) -> ApiResult<Answer> {
        let csrf = self.csrf()?;
        let action = format!("{MFA_PATH}{}", self.carried(&[]));
        let pending = self.pending();
        let markup = factors::second_step(
            self.site(),
            &csrf,
            &action,
            mfa_token,
            alert.as_ref(),
            pending.as_ref().map(|r| r.client_name.as_str()),
        );
        Ok(self.page(status, markup))
    }

    /// `POST /auth/mfa`: the code, and on to the app or the account. A
    /// wrong code shows the step again with the same ticket; a ticket
    /// that is spent or gone starts the sign-in over.
    pub(super) async fn second_step(&mut self, form: &Form) -> ApiResult<Answer> {
        let mfa_token = form.get("mfa_token").unwrap_or("").to_owned();
        let Some(code) = SecondFactor::parse(form.get("code").unwrap_or("")) else {
            let e = ApiError::InvalidRequest(
                "Enter the 6 digits from your authenticator app, or a recovery code.".into(),
            );
            return self.second_step_page(&mfa_token, 400, Some(Alert::Error(auth::sentence(&e))));
        };
        match self
            .svc
            .login_mfa(&mfa_token, &code, Audience::Browser)
            .await
        {
            Ok((session, mail)) => {
                deliver_later(self.ctx, &self.svc.mailer, mail);
                self.signed_in(session).await
            }
            Err(e @ ApiError::WrongCode { .. }) => self.second_step_page(
                &mfa_token,
                e.status(),
                Some(Alert::Error(auth::sentence(&e))),
            ),
            Err(e @ (ApiError::MfaTokenInvalid | ApiError::TooManyAttempts)) => {
                let alert = Some(Alert::Error(format!(
                    "{} Sign in again.",
                    auth::sentence(&e).trim_end_matches(" Sign in again.")
                )));
                let email = self.remembered_email();
                self.auth_page(auth::AuthPage::SignIn, e.status(), &email, alert)
            }
            Err(e) => Err(e),
        }
    }

    /// The account this browser is signed in to, or the sign-in page.
    async fn signed_in_user(&mut self) -> ApiResult<Result<User, Answer>> {
        let token = self.cookie(SESSION_COOKIE);
        match self.svc.me(token.as_deref(), Presented::Cookie).await {
            Ok(user) => Ok(Ok(user)),
            Err(ApiError::Unauthorized) => Ok(Err(
                Answer::redirect("/auth/sign-in").cookie(clear_cookie(SESSION_COOKIE))
            )),
            Err(e) => Err(e),
        }
    }

    fn setup_page(
        &mut self,
        e: &TotpEnrolment,
        status: u16,
        alert: Option<Alert>,
    ) -> ApiResult<Answer> {
        let csrf = self.csrf()?;
        let secret = e.secret.base32();
        let markup = factors::totp_setup(&TotpSetupView {
            site: self.site(),
            csrf: &csrf,
            secret: &secret,
            otpauth_uri: &e.otpauth_uri,
            alert,
        });
        Ok(self.page(status, markup))
    }

    fn codes_page(&self, codes: &[RecoveryCode]) -> Answer {
        let shown: Vec<String> = codes.iter().map(RecoveryCode::shown).collect();
        self.page(200, factors::recovery_codes(self.site(), &shown))
    }

    /// The account page again, with `e` in place.
    async fn account_with(&mut self, user: &User, e: &ApiError) -> ApiResult<Answer> {
        let alert = Alert::Error(auth::sentence(e));
        self.account_page(user, e.status(), Some(alert)).await
    }

    /// The forms of the account page's two-step section.
    pub(super) async fn account_factor(&mut self, path: &str, form: &Form) -> ApiResult<Answer> {
        let user = match self.signed_in_user().await? {
            Ok(user) => user,
            Err(to_sign_in) => return Ok(to_sign_in),
        };
        let app_code = || {
            TotpCode::parse(form.get("code").unwrap_or("")).ok_or_else(|| {
                ApiError::InvalidRequest("Enter the 6 digits from your authenticator app.".into())
            })
        };
        match path {
            factors::TOTP_SETUP_PATH => {
                // A live cookie is not enough: the sign-in must be recent.
                let token = self.cookie(SESSION_COOKIE);
                let result = match self
                    .svc
                    .recently_signed_in(token.as_deref(), Presented::Cookie)
                    .await
                {
                    Ok(user) => self.svc.begin_totp(&user).await,
                    Err(e) => Err(e),
                };
                match result {
                    Ok(e) => self.setup_page(&e, 200, None),
                    Err(e) if shown_here(&e) => self.account_with(&user, &e).await,
                    Err(e) => Err(e),
                }
            }
            factors::TOTP_CONFIRM_PATH => {
                let result = match app_code() {
                    Ok(code) => self.svc.confirm_totp(&user, &code).await,
                    Err(e) => Err(e),
                };
                match result {
                    Ok((codes, mail)) => {
                        deliver_later(self.ctx, &self.svc.mailer, mail);
                        Ok(self.codes_page(&codes))
                    }
                    // The same key again, with what was wrong.
                    Err(e) if shown_here(&e) => match self.svc.pending_totp(&user).await? {
                        Some(pending) => {
                            let alert = Some(Alert::Error(auth::sentence(&e)));
                            self.setup_page(&pending, e.status(), alert)
                        }
                        None => self.account_with(&user, &e).await,
                    },
                    Err(e) => Err(e),
                }
            }
            factors::RECOVERY_CODES_PATH => {
                let result = match app_code() {
                    Ok(code) => self.svc.replace_recovery_codes(&user, &code).await,
                    Err(e) => Err(e),
                };
                match result {
                    Ok((codes, mail)) => {
                        deliver_later(self.ctx, &self.svc.mailer, mail);
                        Ok(self.codes_page(&codes))
                    }
                    Err(e) if shown_here(&e) => self.account_with(&user, &e).await,
                    Err(e) => Err(e),
                }
            }
            factors::TOTP_OFF_PATH => {
                let result = match SecondFactor::parse(form.get("code").unwrap_or("")) {
                    Some(proof) => self.svc.remove_totp(&user, &proof).await,
                    None => Err(ApiError::InvalidRequest(
                        "Enter the 6 digits from your authenticator app, or a recovery code."
                            .into(),
                    )),
                };
                match result {
                    Ok(mail) => {
                        deliver_later(self.ctx, &self.svc.mailer, mail);
                        Ok(Answer::redirect(&format!(
                            "/auth/account?notice={}",
                            Notice::TotpOff.as_str()
                        )))
                    }
                    Err(e) if shown_here(&e) => self.account_with(&user, &e).await,
                    Err(e) => Err(e),
                }
            }
            _ => Err(ApiError::NotFound),
        }
    }
}

/// What the account's forms show in place: what the person can fix.
fn shown_here(e: &ApiError) -> bool {
    shown_in_place(e)
        || matches!(
            e,
            ApiError::SecondFactorLocked { .. }
                | ApiError::FreshSignInRequired
                | ApiError::TotpAlreadyEnabled
                | ApiError::TotpNotEnabled
        )
}
