//! The routes: what each request may do, in the order the checks run. Every POST must come from
//! the site's own origin (`Origin` equal to web.conf's, a missing one refused) as a form body of
//! at most `MAX_BODY` bytes; every POST in a session must carry the session's token. Every
//! response gets the headers of `security_headers`. Whatever changes the store goes through the
//! session's helper, which acts only for the user it signed in.
#![forbid(unsafe_code)]
// A check's refusal is the whole response to send; its size is no cost on these paths.
#![allow(clippy::result_large_err)]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use zeroize::Zeroizing;

use crate::config::WebConfig;
use crate::helper::{Helper, HelperGone, Reply, Request};
use crate::pages::{
    CodePage, CodeRow, FormPage, Frame, ListPage, MessagePage, ServiceOption, SignInPage, StepPage,
    groups,
};
use crate::profile;
use crate::sessions::{Full, Pending, Session, Sessions, State, same_token};
use crate::throttle::Throttle;

/// Largest form body: a create form with every field full is under 4 KiB.
pub const MAX_BODY: usize = 8 * 1024;
const COOKIE: &str = "__Host-apppw";
/// After this long since the last confirmation the forms ask for the password (the helper
/// refuses minting after 5 minutes; asking a little earlier saves a round trip).
const ASK_PASSWORD_AFTER: Duration = Duration::from_secs(4 * 60);
const STYLE: &str = include_str!("style.css");

pub struct App {
    pub config: WebConfig,
    pub sessions: Sessions,
    pub throttle: Throttle,
}

type Shared = AxumState<Arc<App>>;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(list))
        .route("/sign-in", get(sign_in_form).post(sign_in))
        .route("/step", post(step))
        .route("/new", get(new_form).post(create))
        .route("/edit", get(edit_form).post(edit))
        .route("/rename", post(rename))
        .route("/revoke", post(revoke))
        .route("/revoke-all", post(revoke_all))
        .route("/profile", post(download_profile))
        .route("/sign-out", post(sign_out))
        .route("/style.css", get(style))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::map_response(security_headers))
        .with_state(app)
}

/// On every response: no script at all, no framing, no caching (a page may show a code), no
/// Referer to other sites, no type sniffing. `same-origin` rather than `no-referrer`: under
/// `no-referrer` browsers send `Origin: null` with the page's own forms, which the Origin check
/// must refuse; no URL of the page holds anything secret.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A form body's fields; values are wiped when dropped (one may be a password or a code).
struct Form(Vec<(String, Zeroizing<String>)>);

impl Form {
    fn parse(body: &[u8]) -> Form {
        Form(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), Zeroizing::new(v.into_owned())))
                .collect(),
        )
    }

    fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
            .collect()
    }
}

// ---- Responses ----

fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => {
            eprintln!("apppw-web: a page could not be rendered: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

fn see_other(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

fn with_cookie(mut response: Response, id: Option<&str>) -> Response {
    let value = match id {
        Some(id) => format!("{COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict"),
        None => format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"),
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

impl App {
    fn frame(&self, title: &str, state: Option<&State>, token: &str) -> Frame {
        Frame {
            site: self.config.site_name.clone(),
            title: title.to_owned(),
            user: state.filter(|s| s.signed_in).map(|s| s.user.clone()),
            token: token.to_owned(),
            messages: Vec::new(),
            error: None,
        }
    }

    fn message(&self, status: StatusCode, title: &str, text: &str, signed_in: bool) -> Response {
        let (link, link_text) = if signed_in {
            ("/", "Back to your app passwords")
        } else {
            ("/sign-in", "Sign in")
        };
        html(
            status,
            &MessagePage {
                frame: self.frame(title, None, ""),
                text: text.to_owned(),
                link,
                link_text,
            },
        )
    }

    fn refused(&self, text: &str) -> Response {
        self.message(StatusCode::FORBIDDEN, "Refused", text, false)
    }

    fn sign_in_page(
        &self,
        status: StatusCode,
        user: &str,
        error: Option<String>,
        messages: Vec<String>,
    ) -> Response {
        let mut frame = self.frame("Sign in", None, "");
        frame.error = error;
        frame.messages = messages;
        html(
            status,
            &SignInPage {
                frame,
                user: user.to_owned(),
            },
        )
    }

    /// The session's helper is gone: the session ends.
    fn session_lost(&self, id: &str, why: &HelperGone) -> Response {
        self.sessions.end(id);
        eprintln!("apppw-web: a session ended: {}", why.0);
        with_cookie(
            self.message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Session ended",
                "Your session ended on the server. Sign in again; if this keeps happening, tell your administrator.",
                false,
            ),
            None,
        )
    }
}

// ---- Checks ----

/// A POST from the site's own pages: its Origin, and a form body.
fn check_post(app: &App, headers: &HeaderMap) -> Result<(), Response> {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if origin != Some(app.config.origin.as_str()) {
        return Err(app.refused(
            "This form did not come from this site's own page, so it was refused and nothing was changed. Open the page again and retry.",
        ));
    }
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return Err(app.message(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Refused",
            "Only the page's own forms are accepted here.",
            false,
        ));
    }
    Ok(())
}

/// The browser's address, which the reverse proxy writes into X-Real-IP (docs/WEB.md: the front
/// is reachable only through the proxy's Unix socket, so the header is the proxy's).
fn client_address(app: &App, headers: &HeaderMap) -> Result<IpAddr, Response> {
    headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<IpAddr>().ok())
        // A dual-stack proxy reports IPv4 clients as ::ffff:a.b.c.d.
        .map(|ip| ip.to_canonical())
        .ok_or_else(|| {
            app.message(
                StatusCode::BAD_REQUEST,
                "Misconfigured",
                "apppw-web must sit behind its reverse proxy, which sets X-Real-IP (see the shipped nginx example).",
                false,
            )
        })
}

fn cookie_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .find(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
}

fn session_of(app: &App, headers: &HeaderMap) -> Option<(String, Arc<Session>)> {
    let id = cookie_id(headers)?;
    let session = app.sessions.find(&id)?;
    Some((id, session))
}

/// A POST in a session: origin, form, session and token. The session's lock is the caller's
/// to take.
fn session_post(
    app: &App,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, Arc<Session>, Form), Response> {
    check_post(app, headers)?;
    let Some((id, session)) = session_of(app, headers) else {
        return Err(with_cookie(
            app.refused("Your session has ended (you signed out, or it expired). Sign in again; nothing was changed."),
            None,
        ));
    };
    let form = Form::parse(body);
    if !same_token(form.get("token"), &session.token) {
        return Err(app.refused(
            "This form's session token is missing or out of date, so it was refused and nothing was changed. Open the page again and retry.",
        ));
    }
    Ok((id, session, form))
}

// ---- Sign-in ----

async fn sign_in_form(AxumState(app): Shared, headers: HeaderMap) -> Response {
    if let Some((_, session)) = session_of(&app, &headers) {
        if session.state.lock().await.signed_in {
            return see_other("/");
        }
    }
    app.sign_in_page(StatusCode::OK, "", None, Vec::new())
}

async fn sign_in(AxumState(app): Shared, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(response) = check_post(&app, &headers) {
        return response;
    }
    let address = match client_address(&app, &headers) {
        Ok(address) => address,
        Err(response) => return response,
    };
    let form = Form::parse(&body);
    let (user, password) = (form.get("user").trim(), form.get("password"));
    if user.is_empty() || password.is_empty() || user.len() > 256 {
        return app.sign_in_page(
            StatusCode::BAD_REQUEST,
            user,
            Some("Enter your user name and your password.".into()),
            Vec::new(),
        );
    }
    let hold = match app.throttle.begin(address, user, Instant::now()) {
        Ok(hold) => hold,
        Err(wait) => return too_early(&app, user, wait),
    };
    // Guesses for this name from elsewhere hold the try back a little; they never refuse it.
    if !hold.is_zero() {
        tokio::time::sleep(hold).await;
    }
    let mut helper = match Helper::connect(&app.config.helper).await {
        Ok(helper) => helper,
        Err(e) => {
            app.throttle.refund(address, user);
            eprintln!("apppw-web: {}", e.0);
            return app.message(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", "Sign-in is unavailable right now. Try again later; if it persists, tell your administrator.", false);
        }
    };
    let reply = helper
        .ask(&Request::SignIn {
            user,
            password,
            address: &address.to_string(),
        })
        .await;
    let state = |signed_in: bool, user: String, services: Vec<String>, pending, notices| State {
        helper,
        user,
        signed_in,
        services,
        confirmed: Instant::now(),
        pending,
        prompt: (String::new(), false),
        notices,
        counted_from: address,
    };
    match reply {
        Ok(Reply::SignedIn {
            user: account,
            services,
            messages,
        }) => {
            app.throttle.succeeded(address, user, Instant::now());
            match app
                .sessions
                .start(state(true, account, services, None, messages))
            {
                Ok((id, _)) => with_cookie(see_other("/"), Some(&id)),
                Err(full) => busy(&app, &full),
            }
        }
        Ok(Reply::Prompt {
            text,
            echo,
            messages,
        }) => {
            match app
                .sessions
                .start(state(false, user.to_owned(), Vec::new(), None, Vec::new()))
            {
                Ok((id, session)) => {
                    let mut state = session.state.lock().await;
                    let page = ask_step(
                        &app,
                        &session,
                        &mut state,
                        Pending::SignIn,
                        text,
                        echo,
                        messages,
                    );
                    with_cookie(page, Some(&id))
                }
                Err(full) => {
                    app.throttle.refund(address, user);
                    busy(&app, &full)
                }
            }
        }
        // The try was counted before PAM ran (`Throttle::begin`).
        Ok(Reply::Refused { message, messages }) => {
            app.sign_in_page(StatusCode::OK, user, Some(message), messages)
        }
        Ok(other) => {
            app.throttle.refund(address, user);
            eprintln!("apppw-web: the helper answered sign_in with {other:?}");
            app.message(
                StatusCode::BAD_GATEWAY,
                "Unavailable",
                "Sign-in failed on the server. Tell your administrator.",
                false,
            )
        }
        Err(e) => {
            app.throttle.refund(address, user);
            eprintln!("apppw-web: {}", e.0);
            app.message(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", "Sign-in is unavailable right now. Try again later; if it persists, tell your administrator.", false)
        }
    }
}

/// 429: this address must wait before its next try.
fn too_early(app: &App, user: &str, wait: Duration) -> Response {
    let seconds = wait.as_secs().max(1);
    let mut response = app.sign_in_page(
        StatusCode::TOO_MANY_REQUESTS,
        user,
        Some(format!(
            "Too many failed sign-ins. Wait {seconds} seconds, then try again."
        )),
        Vec::new(),
    );
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn busy(app: &App, full: &Full) -> Response {
    let text = match full {
        Full::Everyone => {
            "The page has as many sessions as it can hold. Try again in a few minutes."
        }
        Full::Unfinished => {
            "Too many sign-ins are waiting for a second step. Try again in a minute."
        }
    };
    app.message(StatusCode::SERVICE_UNAVAILABLE, "Busy", text, false)
}

/// The answer to a PAM step: of the sign-in, or of a password confirmation.
async fn step(AxumState(app): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let (id, session, form) = match session_post(&app, &headers, &body) {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let mut state = session.state.lock().await;
    let Some(pending) = state.pending.take() else {
        return see_other("/");
    };
    let reply = state.helper.ask(&Request::Answer(form.get("answer"))).await;
    let reply = match reply {
        Ok(reply) => reply,
        Err(e) => return app.session_lost(&id, &e),
    };
    match (pending, reply) {
        (
            pending,
            Reply::Prompt {
                text,
                echo,
                messages,
            },
        ) => ask_step(&app, &session, &mut state, pending, text, echo, messages),
        (
            Pending::SignIn,
            Reply::SignedIn {
                user,
                services,
                messages,
            },
        ) => {
            // The try was counted at the address the sign-in came from.
            app.throttle
                .succeeded(state.counted_from, &state.user, Instant::now());
            state.notices = messages;
            state.signed_in = true;
            state.user = user.clone();
            state.services = services;
            state.confirmed = Instant::now();
            drop(state);
            let new_id = app.sessions.signed_in(&id, &session, &user);
            with_cookie(see_other("/"), Some(&new_id))
        }
        // Counted before PAM ran.
        (Pending::SignIn, Reply::Refused { message, messages }) => {
            let user = state.user.clone();
            drop(state);
            app.sessions.end(&id);
            with_cookie(
                app.sign_in_page(StatusCode::OK, &user, Some(message), messages),
                None,
            )
        }
        (Pending::Confirm { then }, Reply::Confirmed { messages }) => {
            app.throttle
                .succeeded(state.counted_from, &state.user, Instant::now());
            state.confirmed = Instant::now();
            state.notices = messages;
            finish(&app, &id, &session, &mut state, then).await
        }
        // Counted before the confirmation was asked.
        (Pending::Confirm { .. }, Reply::Refused { message, .. }) => {
            list_page(&app, &id, &session, &mut state, Some(message)).await
        }
        (_, other) => {
            eprintln!("apppw-web: the helper answered a step with {other:?}");
            app.session_lost(&id, &HelperGone("unexpected reply".into()))
        }
    }
}

/// A password confirmation in a session is slowed like a sign-in (a stolen cookie must not be a
/// free password oracle): `Err` says how long to wait.
async fn begin_confirmation(app: &App, state: &mut State, address: IpAddr) -> Result<(), String> {
    match app.throttle.begin(address, &state.user, Instant::now()) {
        Ok(hold) => {
            state.counted_from = address;
            if !hold.is_zero() {
                tokio::time::sleep(hold).await;
            }
            Ok(())
        }
        Err(wait) => Err(format!(
            "Too many wrong passwords. Wait {} seconds, then try again.",
            wait.as_secs().max(1)
        )),
    }
}

/// Shows PAM's question and keeps `pending` until it is answered (`step`).
fn ask_step(
    app: &App,
    session: &Session,
    state: &mut State,
    pending: Pending,
    text: String,
    echo: bool,
    messages: Vec<String>,
) -> Response {
    state.pending = Some(pending);
    state.prompt = (text.clone(), echo);
    let title = if state.signed_in {
        "Confirm"
    } else {
        "Sign in"
    };
    let mut frame = app.frame(title, Some(state), &session.token);
    frame.messages = messages;
    html(
        StatusCode::OK,
        &StepPage {
            frame,
            prompt: text,
            echo,
        },
    )
}

/// Where a signed-in page goes instead, if the session cannot serve it now: to the sign-in page
/// when it is not signed in, or back to a PAM step that waits for its answer (the helper is
/// inside PAM and takes nothing else; Back and reload must not end the session).
fn not_ready(app: &App, session: &Session, state: &State) -> Option<Response> {
    if !state.signed_in {
        return Some(see_other("/sign-in"));
    }
    state.pending.as_ref()?;
    let (prompt, echo) = state.prompt.clone();
    let mut frame = app.frame("Confirm", Some(state), &session.token);
    frame.error = Some("Answer this first; what you asked for comes after.".into());
    Some(html(
        StatusCode::CONFLICT,
        &StepPage {
            frame,
            prompt,
            echo,
        },
    ))
}

// ---- Signed-in pages ----

/// The signed-in session of a GET, or the way to the sign-in page.
fn signed_in_session(app: &App, headers: &HeaderMap) -> Result<(String, Arc<Session>), Response> {
    session_of(app, headers).ok_or_else(|| see_other("/sign-in"))
}

async fn list(AxumState(app): Shared, headers: HeaderMap) -> Response {
    let (id, session) = match signed_in_session(&app, &headers) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let mut state = session.state.lock().await;
    if let Some(elsewhere) = not_ready(&app, &session, &state) {
        return elsewhere;
    }
    list_page(&app, &id, &session, &mut state, None).await
}

async fn codes(state: &mut State) -> Result<Result<Vec<CodeRow>, String>, HelperGone> {
    let words = vec!["list".to_owned()];
    Ok(match state.helper.ask(&Request::Run(&words)).await? {
        Reply::Done { output, .. } => Ok(output
            .as_array()
            .map(|codes| codes.iter().filter_map(CodeRow::from_json).collect())
            .unwrap_or_default()),
        Reply::Failed { message, .. } => Err(message),
        other => Err(format!("unexpected reply {other:?}")),
    })
}

async fn list_page(
    app: &App,
    id: &str,
    session: &Session,
    state: &mut State,
    error: Option<String>,
) -> Response {
    let rows = match codes(state).await {
        Ok(rows) => rows,
        Err(e) => return app.session_lost(id, &e),
    };
    let mut frame = app.frame("Your app passwords", Some(state), &session.token);
    frame.messages = std::mem::take(&mut state.notices);
    let codes = match rows {
        Ok(rows) => rows,
        Err(message) => {
            frame.error = Some(message);
            Vec::new()
        }
    };
    if error.is_some() {
        frame.error = error;
    }
    let status = if frame.error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    html(status, &ListPage { frame, codes })
}

/// The create or edit form, filled with `values`.
struct FormValues {
    id: Option<i64>,
    label: String,
    services: Vec<String>,
    networks: String,
    expires: String,
    /// The stored expiry's date as the edit form first showed it: left as shown, the expiry
    /// is not touched.
    expires_shown: String,
}

fn form_page(
    app: &App,
    session: &Session,
    state: &State,
    values: FormValues,
    error: Option<String>,
    force_password: bool,
) -> Response {
    let mut offered = if state.services.is_empty() {
        app.config.services.clone()
    } else {
        state.services.clone()
    };
    // A code's own services are always shown, offered or not: saving the form must never drop
    // one it was limited to (and so widen it to every service).
    for service in &values.services {
        if !offered.contains(service) {
            offered.push(service.clone());
        }
    }
    let services = offered
        .iter()
        .map(|name| ServiceOption {
            name: name.clone(),
            checked: values.services.contains(name),
        })
        .collect();
    let editing = values.id.is_some();
    let mut frame = app.frame(
        if editing {
            "Edit an app password"
        } else {
            "Create an app password"
        },
        Some(state),
        &session.token,
    );
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    frame.error = error;
    html(
        status,
        &FormPage {
            frame,
            action: if editing { "/edit" } else { "/new" },
            id: values.id,
            label: values.label,
            services,
            networks: values.networks,
            expires: values.expires,
            expires_shown: values.expires_shown,
            expiry_default: if editing {
                "no expiry"
            } else {
                "no expiry, or the site's longest lifetime"
            },
            ask_password: force_password || state.confirmed.elapsed() > ASK_PASSWORD_AFTER,
            submit: if editing { "Save" } else { "Create" },
        },
    )
}

async fn new_form(AxumState(app): Shared, headers: HeaderMap) -> Response {
    let (_, session) = match signed_in_session(&app, &headers) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let state = session.state.lock().await;
    if let Some(elsewhere) = not_ready(&app, &session, &state) {
        return elsewhere;
    }
    let values = FormValues {
        id: None,
        label: String::new(),
        services: Vec::new(),
        networks: String::new(),
        expires: String::new(),
        expires_shown: String::new(),
    };
    form_page(&app, &session, &state, values, None, false)
}

async fn edit_form(AxumState(app): Shared, headers: HeaderMap, uri: Uri) -> Response {
    let (id, session) = match signed_in_session(&app, &headers) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let mut state = session.state.lock().await;
    if let Some(elsewhere) = not_ready(&app, &session, &state) {
        return elsewhere;
    }
    let wanted: Option<i64> = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "id")
        .and_then(|(_, v)| v.parse().ok());
    let rows = match codes(&mut state).await {
        Ok(Ok(rows)) => rows,
        Ok(Err(message)) => return list_page(&app, &id, &session, &mut state, Some(message)).await,
        Err(e) => return app.session_lost(&id, &e),
    };
    let Some(row) = rows.into_iter().find(|r| Some(r.id) == wanted) else {
        return list_page(
            &app,
            &id,
            &session,
            &mut state,
            Some("There is no such app password among yours.".into()),
        )
        .await;
    };
    let shown = row
        .expires
        .map(|e| e.get(..10).unwrap_or_default().to_owned())
        .unwrap_or_default();
    let values = FormValues {
        id: Some(row.id),
        label: row.label,
        services: row.services,
        networks: row.networks.join("\n"),
        expires: shown.clone(),
        expires_shown: shown,
    };
    form_page(&app, &session, &state, values, None, false)
}

/// A code id from a form: digits only, so it can never be read as an option or a label.
fn code_id(form: &Form) -> Option<i64> {
    let id = form.get("id");
    if id.is_empty() || id.len() > 18 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse().ok()
}

/// The limit words of a create or edit form: `--service=`, `--from=`, `--expires=` (or, when
/// editing, the words that clear a limit left empty). The `=` form keeps a value that starts
/// with `-` a value.
fn limit_words(form: &Form, editing: bool) -> (Vec<String>, FormValues) {
    let services: Vec<String> = form.all("service").into_iter().map(str::to_owned).collect();
    let networks: Vec<String> = form
        .get("networks")
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    let expires = form.get("expires").trim().to_owned();
    let mut words = Vec::new();
    words.extend(services.iter().map(|s| format!("--service={s}")));
    words.extend(networks.iter().map(|n| format!("--from={n}")));
    // An edit that leaves the date as shown leaves the expiry alone (the form shows the day only).
    let unchanged = editing && expires == form.get("expires_shown").trim();
    if !expires.is_empty() && !unchanged {
        words.push(format!("--expires={expires}"));
    }
    if editing {
        if services.is_empty() {
            words.push("--any-service".into());
        }
        if networks.is_empty() {
            words.push("--any-network".into());
        }
        if expires.is_empty() && !unchanged {
            words.push("--no-expiry".into());
        }
    }
    let values = FormValues {
        id: code_id(form),
        label: form.get("label").to_owned(),
        services,
        networks: networks.join("\n"),
        expires,
        // Carried through a form shown again (a wrong password, say) as first shown, never
        // as the value typed since.
        expires_shown: form.get("expires_shown").trim().to_owned(),
    };
    (words, values)
}

async fn create(AxumState(app): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let (id, session, form) = match session_post(&app, &headers, &body) {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let address = match client_address(&app, &headers) {
        Ok(address) => address,
        Err(response) => return response,
    };
    let (limits, values) = limit_words(&form, false);
    let mut words = vec!["new".to_owned()];
    words.extend(limits);
    words.extend(["--".to_owned(), values.label.clone()]);
    let mut state = session.state.lock().await;
    if let Some(elsewhere) = not_ready(&app, &session, &state) {
        return elsewhere;
    }
    confirm_then(
        &app,
        &id,
        &session,
        &mut state,
        (form.get("password"), address),
        words,
        values,
    )
    .await
}

async fn edit(AxumState(app): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let (id, session, form) = match session_post(&app, &headers, &body) {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let address = match client_address(&app, &headers) {
        Ok(address) => address,
        Err(response) => return response,
    };
    let (limits, values) = limit_words(&form, true);
    let Some(code) = values.id else {
        return no_code(&app);
    };
    let mut words = vec!["edit".to_owned(), format!("--label={}", values.label)];
    words.extend(limits);
    words.extend(["--".to_owned(), code.to_string()]);
    let mut state = session.state.lock().await;
    if let Some(elsewhere) = not_ready(&app, &session, &state) {
        return elsewhere;
    }
    confirm_then(
        &app,
        &id,
        &session,
        &mut state,
        (form.get("password"), address),
        words,
        values,
    )
    .await
}

/// Confirms the password first when the form carried one, then runs `words`; a PAM step in
/// between becomes a form step with `words` pending.
async fn confirm_then(
    app: &App,
    id: &str,
    session: &Session,
    state: &mut State,
    (password, address): (&str, IpAddr),
    words: Vec<String>,
    values: FormValues,
) -> Response {
    if !password.is_empty() {
        if let Err(wait) = begin_confirmation(app, state, address).await {
            return form_page(app, session, state, values, Some(wait), true);
        }
        match state.helper.ask(&Request::Confirm(password)).await {
            Ok(Reply::Confirmed { messages }) => {
                app.throttle.succeeded(address, &state.user, Instant::now());
                state.confirmed = Instant::now();
                state.notices = messages;
            }
            Ok(Reply::Prompt {
                text,
                echo,
                messages,
            }) => {
                let then = Pending::Confirm { then: words };
                return ask_step(app, session, state, then, text, echo, messages);
            }
            Ok(Reply::Refused { message, .. }) => {
                return form_page(app, session, state, values, Some(message), true);
            }
            Ok(other) => {
                return app.session_lost(id, &HelperGone(format!("unexpected reply {other:?}")));
            }
            Err(e) => return app.session_lost(id, &e),
        }
    }
    match state.helper.ask(&Request::Run(&words)).await {
        Ok(Reply::Failed {
            confirm_again: true,
            ..
        }) => form_page(
            app,
            session,
            state,
            values,
            Some("Enter your password to confirm: you signed in some minutes ago.".into()),
            true,
        ),
        Ok(Reply::Failed { message, .. }) => {
            form_page(app, session, state, values, Some(message), false)
        }
        Ok(reply) => outcome(app, id, session, state, &words, reply).await,
        Err(e) => app.session_lost(id, &e),
    }
}

/// Runs words whose confirmation a PAM step completed.
async fn finish(
    app: &App,
    id: &str,
    session: &Session,
    state: &mut State,
    words: Vec<String>,
) -> Response {
    match state.helper.ask(&Request::Run(&words)).await {
        Ok(reply) => outcome(app, id, session, state, &words, reply).await,
        Err(e) => app.session_lost(id, &e),
    }
}

/// What a command's reply shows: the code page for `new`, else the list.
async fn outcome(
    app: &App,
    id: &str,
    session: &Session,
    state: &mut State,
    words: &[String],
    reply: Reply,
) -> Response {
    match reply {
        Reply::Done { output, notes } if words.first().map(String::as_str) == Some("new") => {
            let code = output["code"].as_str().unwrap_or_default().to_owned();
            let label = output["label"].as_str().unwrap_or_default().to_owned();
            let mut frame = app.frame("Your new app password", Some(state), &session.token);
            frame.messages = notes;
            let page = CodePage {
                frame,
                groups: groups(&code),
                label,
                code,
                profile: app.config.imap.is_some() && app.config.smtp.is_some(),
            };
            html(StatusCode::OK, &page)
        }
        Reply::Done { .. } => see_other("/"),
        Reply::Failed { message, .. } => list_page(app, id, session, state, Some(message)).await,
        other => app.session_lost(id, &HelperGone(format!("unexpected reply {other:?}"))),
    }
}

fn no_code(app: &App) -> Response {
    app.message(
        StatusCode::BAD_REQUEST,
        "Refused",
        "The form named no app password; nothing was changed. Open the page again and retry.",
        true,
    )
}

async fn rename(AxumState(app): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let (id, session, form) = match session_post(&app, &headers, &body) {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let Some(code) = code_id(&form) else {
        return no_code(&app);
    };
    let words = vec![
        "rename".to_owned(),
        "--".to_owned(),
        code.to_string(),
        form.get("label").to_owned(),
    ];
    run_simple(&app, &id, &session, words).await
}

async fn revoke(AxumState(app): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let (id, session, form) = match session_post(&app, &headers, &body) {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let Some(code) = code_id(&form) else {
        return no_code(&app);
    };
    run_simple(
        &app,
        &id,
        &session,
        vec!["revoke".to_owned(), "--".to_owned(), code.to_string()],
    )
    .await
}

async fn run_simple(app: &App, id: &str, session: &Session, words: Vec<String>) -> Response {
    let mut state = session.state.lock().await;
    if let Some(elsewhere) = not_ready(app, session, &state) {
        return elsewhere;
    }
    finish(app, id, session, &mut state, words).await
}

/// Revoking all always asks for the password, in the same form.
async fn revoke_all(AxumState(app): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let (id, session, form) = match session_post(&app, &headers, &body) {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let mut state = session.state.lock().await;
    if let Some(elsewhere) = not_ready(&app, &session, &state) {
        return elsewhere;
    }
    let words = vec!["revoke".to_owned(), "--all".to_owned()];
    if form.get("password").is_empty() {
        return list_page(
            &app,
            &id,
            &session,
            &mut state,
            Some("Enter your password to revoke all your app passwords.".into()),
        )
        .await;
    }
    let address = match client_address(&app, &headers) {
        Ok(address) => address,
        Err(response) => return response,
    };
    if let Err(wait) = begin_confirmation(&app, &mut state, address).await {
        return list_page(&app, &id, &session, &mut state, Some(wait)).await;
    }
    match state
        .helper
        .ask(&Request::Confirm(form.get("password")))
        .await
    {
        Ok(Reply::Confirmed { messages }) => {
            app.throttle.succeeded(address, &state.user, Instant::now());
            state.confirmed = Instant::now();
            state.notices = messages;
            finish(&app, &id, &session, &mut state, words).await
        }
        Ok(Reply::Prompt {
            text,
            echo,
            messages,
        }) => {
            let then = Pending::Confirm { then: words };
            ask_step(&app, &session, &mut state, then, text, echo, messages)
        }
        // Counted in `begin_confirmation`.
        Ok(Reply::Refused { message, .. }) => {
            list_page(&app, &id, &session, &mut state, Some(message)).await
        }
        Ok(other) => app.session_lost(&id, &HelperGone(format!("unexpected reply {other:?}"))),
        Err(e) => app.session_lost(&id, &e),
    }
}

/// The Apple profile for the code the page just showed, made from this POST and never kept.
async fn download_profile(AxumState(app): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let (_, session, form) = match session_post(&app, &headers, &body) {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let state = session.state.lock().await;
    if let Some(elsewhere) = not_ready(&app, &session, &state) {
        return elsewhere;
    }
    let code = form.get("code");
    if code.is_empty() || code.len() > 64 || code.chars().any(char::is_control) {
        return app.message(
            StatusCode::BAD_REQUEST,
            "Refused",
            "The form carried no app password.",
            true,
        );
    }
    let account = profile::Account {
        user: &state.user,
        label: form.get("label"),
        code,
    };
    let Some(xml) = profile::mobileconfig(&app.config, &account).map(Zeroizing::new) else {
        return app.message(
            StatusCode::NOT_FOUND,
            "Not offered",
            "This site offers no profile: its web.conf names no IMAP and SMTP server.",
            true,
        );
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, profile::CONTENT_TYPE),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"mail.mobileconfig\"",
            ),
        ],
        xml.as_bytes().to_vec(),
    )
        .into_response()
}

async fn sign_out(AxumState(app): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let (id, _, _) = match session_post(&app, &headers, &body) {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    // Dropping the session closes its helper connection: the helper reads EOF and exits.
    app.sessions.end(&id);
    with_cookie(see_other("/sign-in"), None)
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

async fn not_found(AxumState(app): Shared) -> Response {
    app.message(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page.",
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_well_formed_session_cookie_is_read() {
        let id = "ab".repeat(32);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {COOKIE}={id}")).unwrap(),
        );
        assert_eq!(cookie_id(&headers), Some(id));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("__Host-apppw=../../etc; apppw=zz"),
        );
        assert_eq!(cookie_id(&headers), None);
    }

    #[test]
    fn form_values_become_words_that_stay_values() {
        // The expiry shown was 2027-01-31 and the field was cleared: no expiry any more.
        let form = Form::parse(b"label=-rf&service=imap&service=smtp&networks=192.0.2.0%2F24%0D%0A2001%3Adb8%3A%3A%2F48&expires=&expires_shown=2027-01-31&id=12");
        let (words, values) = limit_words(&form, true);
        assert_eq!(
            words,
            [
                "--service=imap",
                "--service=smtp",
                "--from=192.0.2.0/24",
                "--from=2001:db8::/48",
                "--no-expiry"
            ]
        );
        assert_eq!(values.label, "-rf");
        assert_eq!(values.id, Some(12));
        // Left as shown: the expiry is not touched.
        let form = Form::parse(b"label=x&expires=2027-01-31&expires_shown=2027-01-31&id=12");
        assert_eq!(
            limit_words(&form, true).0,
            ["--any-service", "--any-network"]
        );
        let form = Form::parse(b"id=12%20--all");
        assert_eq!(code_id(&form), None);
    }
}
