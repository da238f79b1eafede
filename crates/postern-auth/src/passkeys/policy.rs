//! The rule of `required_after_first_sign_in`, and when to offer a
//! passkey after an email sign-in.

use postern_core::crypto::random_id;
use postern_core::{App, PasskeyPolicy};
use postern_store::{LoginRequest, PasskeyQueries, Queries, Session, SignInEvent};

use super::*;
use crate::error::Flow;
use crate::signin::{flow_of, Method};

/// What [`gate`] decided for a link or code sign-in.
#[derive(Debug)]
pub(crate) enum Gate {
    /// Go on, recorded with this method.
    Pass(Method),
    /// Refused: the person has a passkey and this app wants it.
    Refuse,
}

/// Issue 15 `required_after_first_sign_in`: once a person has a passkey, a
/// link or code alone does not sign them in to such an app, unless they
/// said they lost their passkey (`who.passkey_lost`): then it does, and
/// history says so.
pub(crate) async fn gate(
    conn: &mut (impl Queries + PasskeyQueries),
    app: &App,
    request: &LoginRequest,
    method: Method,
    who: &Requester,
) -> Result<Gate> {
    if !gated(app, method) {
        return Ok(Gate::Pass(method));
    }
    let Some(user) = conn.user_by_email(&request.email).await? else {
        return Ok(Gate::Pass(method));
    };
    if conn.count_passkeys(&user.id).await? == 0 {
        return Ok(Gate::Pass(method));
    }
    if !who.passkey_lost {
        return Ok(Gate::Refuse);
    }
    Ok(Gate::Pass(match method {
        Method::Link => Method::LinkPasskeyLost,
        _ => Method::CodePasskeyLost,
    }))
}

/// Whether [`gate`] has anything to decide: a link or code sign-in to an
/// app with `required_after_first_sign_in`.
fn gated(app: &App, method: Method) -> bool {
    matches!(method, Method::Link | Method::Code)
        && app.settings.passkeys == PasskeyPolicy::RequiredAfterFirstSignIn
}

/// [`gate`] on a pooled connection, taken only when there is something to
/// decide: for a sign-in whose transaction runs on the store's writer
/// ([`postern_store::Store::write`]), before it. (A passkey made between
/// this read and that transaction counts from the next sign-in on.)
pub(crate) async fn gate_before(
    svc: &Services,
    app: &App,
    request: &LoginRequest,
    method: Method,
    who: &Requester,
) -> Result<Gate> {
    if !gated(app, method) {
        return Ok(Gate::Pass(method));
    }
    gate(&mut svc.store.conn().await?, app, request, method, who).await
}

/// Issue 15 `required_after_first_sign_in` for a session the browser
/// already holds (single sign-on at `/authorize`), the counterpart of
/// [`gate`]: once its person has a passkey, a session serves such an app
/// only if it stands for the passkey — made by one (`amr` has `hwk` or
/// `swk`), or `passkey_ok` (a "lost passkey" sign-in made it, or a passkey
/// was made in it). Otherwise a link to an app that does not ask would
/// open, by single sign-on, the app that refuses the link alone.
pub(crate) async fn session_may_enter(
    svc: &Services,
    app: &App,
    session: &Session,
) -> Result<bool> {
    if app.settings.passkeys != PasskeyPolicy::RequiredAfterFirstSignIn || session.passkey_ok {
        return Ok(true);
    }
    let by_passkey = session
        .amr
        .split_whitespace()
        .any(|m| m == "hwk" || m == "swk");
    // Only a session made by email for such an app costs a read.
    Ok(by_passkey
        || svc
            .store
            .conn()
            .await?
            .count_passkeys(&session.user_id)
            .await?
            == 0)
}

/// Records the refusal of [`gate`] (after the sign-in's transaction was
/// rolled back, so the link or code still works once the person says they
/// lost their passkey) and returns its error.
pub(crate) async fn refuse(
    svc: &Services,
    app: &App,
    request: &LoginRequest,
    method: Method,
    who: &Requester,
) -> AuthError {
    let record = async {
        let mut conn = svc.store.conn().await?;
        let user = conn.user_by_email(&request.email).await?;
        conn.insert_sign_in_event(&SignInEvent {
            id: random_id(),
            user_id: user.map(|u| u.id),
            client_id: app.client_id.clone(),
            at: svc.now(),
            ip: Some(who.ip.to_string()),
            user_agent: who.user_agent.clone(),
            method: method.event().to_owned(),
            outcome: "refused".to_owned(),
        })
        .await?;
        Ok::<_, AuthError>(())
    };
    if let Err(e) = record.await {
        return e;
    }
    AuthError::in_app(
        app,
        AuthError::PasskeyRequired {
            flow: Box::new(flow_of(request)),
        },
    )
}

/// Whether to offer making a passkey after this finished sign-in: an email
/// sign-in (link or code) in a browser, for an app that takes passkeys.
/// The face decides the rest (the browser said "not now", or made one).
pub(crate) fn offer_after(
    svc: &Services,
    app: &App,
    method: Method,
    request: &LoginRequest,
) -> Option<Box<Flow>> {
    if !available(svc) {
        return None;
    }
    let email_based = matches!(
        method,
        Method::Link | Method::Code | Method::LinkPasskeyLost | Method::CodePasskeyLost
    );
    (email_based && !request.headless && app.settings.passkeys != PasskeyPolicy::Off)
        .then(|| Box::new(flow_of(request)))
}
