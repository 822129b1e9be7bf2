//! The operator's console: sign in with `ADMIN_TOKEN`, the figures and
//! charts of the last 24 hours and 30 days, the audit trail, the API
//! keys and the OpenID Connect clients. Every page reads through the same flows as `/v1/admin/*`.

use super::chart::{chart, legend, Buckets};
use super::layout::{alert, csrf_field, document, Alert};
use crate::domain::api_key::ApiKey;
use crate::domain::audit::{EventKind, StoredEvent};
use crate::domain::oidc_client::{Client, ClientKind};
use crate::ports::clock::rfc3339;
use crate::ports::store::Stats;
use crate::service::Activity;
use maud::{html, Markup};

/// The console's sections, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Events,
    Keys,
    Clients,
}

fn nav(csrf: &str, current: Section) -> Markup {
    let item = |section: Section, href: &str, text: &str| {
        html! {
            li {
                @if section == current {
                    a href=(href) aria-current="page" { (text) }
                } @else {
                    a href=(href) { (text) }
                }
            }
        }
    };
    html! {
        nav aria-label="Console" {
            ul {
                (item(Section::Overview, "/admin", "Overview"))
                (item(Section::Events, "/admin/events", "Events"))
                (item(Section::Keys, "/admin/keys", "API keys"))
                (item(Section::Clients, "/admin/clients", "OIDC clients"))
            }
            form #sign-out method="post" action="/admin/sign-out" {
                (csrf_field(csrf))
                button .link type="submit" { "Sign out" }
            }
        }
    }
}

fn page(site: &str, csrf: &str, current: Section, title: &str, body: Markup) -> Markup {
    document(&format!("{site} console"), title, nav(csrf, current), body)
}

pub fn sign_in(site: &str, csrf: &str, error: Option<&Alert>) -> Markup {
    let body = html! {
        h1 { "Console sign-in" }
        (alert(error))
        form #admin-sign-in method="post" action="/admin/sign-in" {
            (csrf_field(csrf))
            label for="token" { "Admin token" }
            input #token type="password" name="token" autocomplete="current-password" required;
            button type="submit" { "Sign in" }
        }
        p .hint { "The ADMIN_TOKEN secret of this deployment. The session lasts 30 minutes." }
    };
    document(&format!("{site} console"), "Sign in", html! {}, body)
}

/// A sign-in's way as the audit trail names it, as the console says it.
fn sign_in_method(purpose: &str) -> &str {
    match purpose {
        "password" => "password",
        "login" => "emailed code",
        "verify_email" => "sign-up code",
        "totp" => "password or code + authenticator app",
        "recovery_code" => "password or code + recovery code",
        other => other,
    }
}

fn figure(name: &str, value: u64) -> Markup {
    html! { div { dt { (name) } dd { (value) } } }
}

pub fn overview(site: &str, csrf: &str, stats: &Stats, activity: &Activity) -> Markup {
    let body = html! {
        h1 { "Overview" }
        dl #stats .figures {
            (figure("Accounts", stats.users.total))
            (figure("Verified accounts", stats.users.verified))
            (figure("Accounts with an authenticator app", stats.users.with_totp))
            (figure("Active sessions", stats.active_sessions))
            (figure("Pending codes", stats.active_codes))
            (figure("Expired codes", stats.expired_codes))
            (figure("App codes pending", stats.app_codes))
            (figure("API keys", stats.api_keys))
            @for (purpose, n) in &stats.by_purpose {
                (figure(&format!("Pending: {purpose}"), *n))
            }
            (figure("Test codes pending", stats.test_codes))
            (figure("App sends, 24 h", stats.sends_24h.sent))
            (figure("Test sends, 24 h", stats.sends_24h.test))
            // Refusals are the pumping guards at work (country_not_allowed,
            // prefix_limited, …): an operator watches them here.
            @for (reason, n) in &stats.sends_24h.refused {
                (figure(&format!("Refused, 24 h: {reason}"), *n))
            }
            // How people signed in: a rise of recovery codes is someone
            // who lost an app, or someone who found the codes.
            @for (method, n) in &stats.sign_ins_24h {
                (figure(&format!("Sign-ins, 24 h: {}", sign_in_method(method)), *n))
            }
        }
        h2 { "Last 24 hours" }
        (chart("chart-hourly", "Codes sent, verified and failed per hour over the last 24 hours", &activity.hourly, Buckets::Hours))
        h2 { "Last 30 days" }
        (chart("chart-daily", "Codes sent, verified and failed per day over the last 30 days", &activity.daily, Buckets::Days))
        (legend())
    };
    page(site, csrf, Section::Overview, "Overview", body)
}

/// The events page's filter, as the form shows it.
pub struct EventFilterForm<'a> {
    pub address: &'a str,
    pub kind: Option<EventKind>,
    /// The link to the next page, when this one was full.
    pub next: Option<String>,
    pub alert: Option<Alert>,
}

pub fn events(site: &str, csrf: &str, events: &[StoredEvent], f: &EventFilterForm<'_>) -> Markup {
    let body = html! {
        h1 { "Events" }
        (alert(f.alert.as_ref()))
        form #filter .inline method="get" action="/admin/events" {
            div {
                label for="address" { "Address" }
                input #address type="text" name="address" value=(f.address)
                    placeholder="email or +phone" autocomplete="off" spellcheck="false";
            }
            div {
                label for="kind" { "Kind" }
                select #kind name="kind" {
                    option value="" selected[f.kind.is_none()] { "All kinds" }
                    @for k in EventKind::ALL {
                        option value=(k.as_str()) selected[f.kind == Some(k)] { (k.as_str()) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        div .scroll {
            table #events {
                caption { "Newest first" }
                thead { tr {
                    th scope="col" { "Time (UTC)" } th scope="col" { "Event" } th scope="col" { "Outcome" }
                    th scope="col" { "Purpose" } th scope="col" { "Channel" } th scope="col" { "IP" }
                } }
                tbody {
                    @for e in events {
                        tr {
                            td { (e.at.replace('T', " ").trim_end_matches('Z')) }
                            td { (e.event) }
                            td { (e.outcome) }
                            td { (e.purpose.as_deref().unwrap_or("")) }
                            td { (e.channel.as_deref().unwrap_or("")) }
                            td { (e.ip.as_deref().unwrap_or("")) }
                        }
                    }
                    @if events.is_empty() {
                        tr { td colspan="6" { "No events." } }
                    }
                }
            }
        }
        @if let Some(next) = &f.next {
            p .links { a rel="next" href=(next) { "Older events" } }
        }
    };
    page(site, csrf, Section::Events, "Events", body)
}

fn key_row(key: &ApiKey) -> Markup {
    html! {
        tr {
            td { (key.name) }
            td { (key.app_name.as_deref().unwrap_or("")) }
            td { "…" (key.hint) }
            td { (key.channels.names().join(", ")) }
            td { (&rfc3339(key.created_at)[..10]) }
            @match key.revoked_at {
                Some(at) => {
                    td .revoked { "revoked " (&rfc3339(at)[..10]) }
                    td {}
                }
                None => {
                    td { "active" }
                    td {
                        a href=(format!("/admin/keys/{}/revoke", key.id)) aria-label=(format!("Revoke {}", key.name)) { "Revoke" }
                    }
                }
            }
        }
    }
}

/// The keys, and the form that creates one; `created` shows a new key's
/// secret, this once.
pub fn keys(
    site: &str,
    csrf: &str,
    keys: &[ApiKey],
    created: Option<(&ApiKey, &str)>,
    note: Option<&Alert>,
) -> Markup {
    let body = html! {
        h1 { "API keys" }
        (alert(note))
        @if let Some((key, secret)) = created {
            section .created aria-labelledby="created-title" {
                h2 #created-title { "Key “" (key.name) "” created" }
                div #notice .alert.notice role="status" { "Copy this key now: it is not shown again." }
                label for="new-key" { "API key" }
                div .copy {
                    input #new-key type="text" readonly value=(secret) spellcheck="false" autocomplete="off";
                    button #copy-key type="button" hidden data-copy="new-key" { "Copy" }
                }
                script src=(super::layout::COPY_JS_PATH) {}
            }
        }
        (listing(
            "keys",
            &["Name", "App name", "Key", "Channels", "Created", "Status"],
            html! { @for key in keys { (key_row(key)) } },
            keys.is_empty().then_some("No keys yet."),
        ))
        h2 { "Create a key" }
        form #create-key method="post" action="/admin/keys" {
            (csrf_field(csrf))
            label for="name" { "Name" }
            input #name type="text" name="name" required maxlength="100" autocomplete="off";
            label for="app_name" { "App name in messages (optional)" }
            input #app_name type="text" name="app_name" maxlength="100" autocomplete="off";
            fieldset {
                legend { "Channels" }
                @for (value, text) in [("email", "Email"), ("sms", "SMS"), ("whatsapp", "WhatsApp")] {
                    label .check {
                        input type="checkbox" name="channels" value=(value) checked[value == "email"];
                        " " (text)
                    }
                }
            }
            button type="submit" { "Create key" }
        }
    };
    page(site, csrf, Section::Keys, "API keys", body)
}

pub fn revoke(site: &str, csrf: &str, key: &ApiKey) -> Markup {
    let body = html! {
        h1 { "Revoke “" (key.name) "”?" }
        p {
            "Apps using the key ending in " strong { (key.hint) }
            " stop working at once, and its pending codes are dropped. This cannot be undone."
        }
        form #revoke method="post" action=(format!("/admin/keys/{}/revoke", key.id)) {
            (csrf_field(csrf))
            button .danger type="submit" { "Revoke key" }
            " "
            a href="/admin/keys" { "Cancel" }
        }
    };
    page(site, csrf, Section::Keys, "Revoke key", body)
}

/// A table of the console, newest first: `columns`, then one for the
/// rows' actions; `empty` stands in for rows when there are none.
fn listing(id: &str, columns: &[&str], rows: Markup, empty: Option<&str>) -> Markup {
    html! {
        div .scroll {
            table id=(id) {
                caption { "Newest first" }
                thead { tr {
                    @for c in columns { th scope="col" { (c) } }
                    th scope="col" { span .visually-hidden { "Actions" } }
                } }
                tbody {
                    (rows)
                    @if let Some(text) = empty { tr { td colspan=(columns.len() + 1) { (text) } } }
                }
            }
        }
    }
}

fn client_row(c: &Client) -> Markup {
    html! {
        tr {
            td { (c.name) }
            td { code { (c.id) } }
            td {
                (c.kind.as_str())
                // Its name is its own claim: the operator sees which.
                @if c.self_registered { br; small .self-registered { "self-registered" } }
            }
            td { @for uri in &c.redirect_uris { div { (uri) } } }
            td { (&rfc3339(c.created_at)[..10]) }
            td {
                a href=(format!("/admin/clients/{}/delete", c.id)) aria-label=(format!("Delete {}", c.name)) { "Delete" }
            }
        }
    }
}

/// The OpenID Connect clients, and the form that registers one; `created`
/// shows a new client's id and, for a confidential one, its secret, this once.
pub fn clients(
    site: &str,
    csrf: &str,
    clients: &[Client],
    created: Option<(&Client, Option<&str>)>,
    note: Option<&Alert>,
) -> Markup {
    let body = html! {
        h1 { "OpenID Connect clients" }
        (alert(note))
        @if let Some((client, secret)) = created {
            section .created aria-labelledby="created-title" {
                h2 #created-title { "Client “" (client.name) "” registered" }
                label for="new-client-id" { "Client id" }
                div .copy {
                    input #new-client-id type="text" readonly value=(client.id) spellcheck="false" autocomplete="off";
                    button #copy-client-id type="button" hidden data-copy="new-client-id" { "Copy" }
                }
                @if let Some(secret) = secret {
                    div #notice .alert.notice role="status" { "Copy the client secret now: it is not shown again." }
                    label for="new-client-secret" { "Client secret" }
                    div .copy {
                        input #new-client-secret type="text" readonly value=(secret) spellcheck="false" autocomplete="off";
                        button #copy-client-secret type="button" hidden data-copy="new-client-secret" { "Copy" }
                    }
                }
                script src=(super::layout::COPY_JS_PATH) {}
            }
        }
        (listing(
            "clients",
            &["Name", "Client id", "Type", "Redirect URIs", "Created"],
            html! { @for c in clients { (client_row(c)) } },
            clients.is_empty().then_some("No clients yet."),
        ))
        h2 { "Register a client" }
        form #create-client method="post" action="/admin/clients" {
            (csrf_field(csrf))
            label for="name" { "Name, as the sign-in pages show it" }
            input #name type="text" name="name" required maxlength="100" autocomplete="off";
            fieldset {
                legend { "Type" }
                @for (kind, text) in [(ClientKind::Confidential, "Confidential: a server, with a secret"), (ClientKind::Public, "Public: a browser or native app, with PKCE")] {
                    label .check {
                        input type="radio" name="type" value=(kind.as_str()) checked[kind == ClientKind::Confidential];
                        " " (text)
                    }
                }
            }
            label for="redirect_uris" { "Redirect URIs, one per line" }
            textarea #redirect_uris name="redirect_uris" required rows="3" spellcheck="false" {}
            label for="post_logout_redirect_uris" { "Post-logout redirect URIs, one per line (optional)" }
            textarea #post_logout_redirect_uris name="post_logout_redirect_uris" rows="2" spellcheck="false" {}
            button type="submit" { "Register client" }
        }
    };
    page(site, csrf, Section::Clients, "OpenID Connect clients", body)
}

pub fn delete_client(site: &str, csrf: &str, client: &Client) -> Markup {
    let body = html! {
        h1 { "Delete “" (client.name) "”?" }
        p {
            "Sign-ins through the client " strong { (client.id) }
            " stop working at once. This cannot be undone."
        }
        form #delete-client method="post" action=(format!("/admin/clients/{}/delete", client.id)) {
            (csrf_field(csrf))
            button .danger type="submit" { "Delete client" }
            " "
            a href="/admin/clients" { "Cancel" }
        }
    };
    page(site, csrf, Section::Clients, "Delete client", body)
}
