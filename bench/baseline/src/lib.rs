//! The benchmark's references. `GET /` answers 200 with no I/O: the ceiling
//! of the runtime. `GET /d1` adds one D1 read (`SELECT 1`) and nothing
//! else: the ceiling of any endpoint that must read the database once.
use worker::{event, Context, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    if req.path() == "/d1" {
        let one: Option<u32> = env
            .d1("DB")?
            .prepare("SELECT 1 AS one")
            .first(Some("one"))
            .await?;
        return Response::ok(format!("{}", one.unwrap_or(0)));
    }
    Response::ok("ok")
}
