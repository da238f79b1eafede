//! Issue 15 in the panel: an administrator deletes one of a person's
//! passkeys from their page (after confirmation; audited by the service).

use axum::extract::{Path, State};
use axum::response::Response;
use postern_auth::admin;

use super::users::{user_url, UserForm};
use super::Ctx;
use postern_web::error::Result;
use postern_web::extract::AppForm;
use postern_web::i18n::fill;
use postern_web::AppState;

/// Issue 15 `POST /admin/users/{user_id}/passkeys/delete`: after
/// confirmation, one of the person's passkeys signs no one in any more.
pub async fn delete_passkey(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(user_id): Path<String>,
    AppForm(form): AppForm<UserForm>,
) -> Result<Response> {
    ctx.csrf(&state, form.csrf_token.as_deref())?;
    let passkey_id = form.passkey_id.unwrap_or_default();
    if form.confirmed.as_deref() != Some("yes") {
        ctx.who
            .authorize(&state, admin::Target::Account(&user_id))
            .await?;
        let user = admin::users::read(&state, &ctx.who, &user_id).await?;
        let name = user
            .passkeys
            .iter()
            .find(|p| p.id == passkey_id)
            .map(|p| p.name.clone())
            .ok_or(postern_web::error::AppError::NotFound)?;
        let question = fill(
            ctx.a.confirm_delete_passkey,
            &[("name", &name), ("email", &user.email)],
        );
        return Ok(ctx.confirm(
            "/admin/users",
            question,
            format!("{}/passkeys/delete", user_url(&user_id)),
            vec![("passkey_id".to_owned(), passkey_id)],
            user_url(&user_id),
        ));
    }
    admin::users::delete_passkey(&state, &ctx.who, &user_id, &passkey_id).await?;
    Ok(ctx.done(&state, &user_url(&user_id), "passkey-deleted"))
}
