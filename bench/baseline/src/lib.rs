//! The benchmark's references, each doing only the minimum work of a kind
//! of route, on the same runtime, crate, profile and build as the service:
//!
//! - `GET /`: 200 with no I/O, the ceiling of the runtime.
//! - `GET /d1`: one D1 read (`SELECT 1`), the floor of `/v1/me`.
//! - `POST /d1-write`: one D1 write, the floor of the verify routes.
//! - `POST /send`: one D1 write and one mail API call (`MAIL_API_URL`),
//!   the floor of the send routes.
//! - `POST /ref/send?to=` and `POST /ref/verify?to=&code=`: a plain OTP
//!   script, with nothing of what the service guarantees (no limits, no
//!   hashing, no attempt cap, no audit). A send writes the code to D1 and
//!   mails it; a verify reads it and deletes it. The reference of the
//!   send-then-verify cycle.
//!
//! The tables: `floor_writes (k INTEGER PRIMARY KEY, v INTEGER)` and
//! `ref_codes (address TEXT PRIMARY KEY, code TEXT, expires_at INTEGER)`.
use worker::wasm_bindgen::JsValue;
use worker::{
    event, js_sys, Context, Env, Fetch, Headers, Method, Request, RequestInit, Response, Result,
};

fn random_below(n: f64) -> f64 {
    (js_sys::Math::random() * n).floor()
}

fn now() -> f64 {
    (js_sys::Date::now() / 1000.0).floor()
}

async fn write(env: &Env) -> Result<()> {
    env.d1("DB")?
        .prepare("INSERT INTO floor_writes (k, v) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET v = excluded.v")
        .bind(&[JsValue::from_f64(random_below(1000.0)), JsValue::from_f64(now())])?
        .run()
        .await?;
    Ok(())
}

async fn mail(env: &Env, to: &str, code: &str) -> Result<()> {
    let url = format!("{}/emails", env.var("MAIL_API_URL")?.to_string());
    let body = format!(
        r#"{{"from":"bench@bench.test","to":["{to}"],"subject":"Your code","text":"Your code:\n\n    {code}\n"}}"#
    );
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(JsValue::from_str(&body)));
    let answer = Fetch::Request(Request::new_with_init(&url, &init)?)
        .send()
        .await?;
    match answer.status_code() {
        200..=299 => Ok(()),
        status => Err(format!("the mail API answered {status}").into()),
    }
}

fn param(req: &Request, name: &str) -> Result<String> {
    req.url()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| format!("no {name}").into())
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    match req.path().as_str() {
        "/d1" => {
            let one: Option<u32> = env
                .d1("DB")?
                .prepare("SELECT 1 AS one")
                .first(Some("one"))
                .await?;
            Response::ok(format!("{}", one.unwrap_or(0)))
        }
        "/d1-write" => {
            write(&env).await?;
            Response::ok("ok")
        }
        "/send" => {
            write(&env).await?;
            mail(&env, "floor@bench.test", "000000").await?;
            Response::ok("ok")
        }
        "/ref/send" => {
            let to = param(&req, "to")?;
            let code = format!("{:06}", random_below(1_000_000.0) as u32);
            env.d1("DB")?
                .prepare("INSERT OR REPLACE INTO ref_codes (address, code, expires_at) VALUES (?1, ?2, ?3)")
                .bind(&[to.as_str().into(), code.as_str().into(), JsValue::from_f64(now() + 600.0)])?
                .run()
                .await?;
            mail(&env, &to, &code).await?;
            Response::ok("sent")
        }
        "/ref/verify" => {
            let (to, code) = (param(&req, "to")?, param(&req, "code")?);
            let db = env.d1("DB")?;
            let stored: Option<String> = db
                .prepare("SELECT code FROM ref_codes WHERE address = ?1 AND expires_at > ?2")
                .bind(&[to.as_str().into(), JsValue::from_f64(now())])?
                .first(Some("code"))
                .await?;
            if stored.as_deref() != Some(code.as_str()) {
                return Response::error("invalid code", 400);
            }
            db.prepare("DELETE FROM ref_codes WHERE address = ?1")
                .bind(&[to.as_str().into()])?
                .run()
                .await?;
            Response::ok("valid")
        }
        _ => Response::ok("ok"),
    }
}
