//! `/admin`: the dashboard, and the email preview frame of an app's page.

use askama::Template;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::chart::{self, ChartWords, Hour, Layout};
use super::{Ctx, Frame};
use postern_web::error::Result;
use postern_web::extract::{AppPath, AppQuery};
use postern_web::i18n::admin::AdminStrings;
use postern_web::i18n::Strings;
use postern_web::AppState;

/// A number with its words, linking to its list when there is one.
pub struct Tile {
    /// The number.
    pub value: i64,
    /// What it counts.
    pub label: &'static str,
    /// Its list.
    pub href: Option<&'static str>,
}

/// One outcome's count.
pub struct Count {
    /// The outcome in words.
    pub label: &'static str,
    /// How many.
    pub value: i64,
}

/// Today's or the week's sign-ins by outcome.
pub struct Period {
    /// "Today".
    pub title: &'static str,
    /// Every outcome, zero ones too.
    pub counts: Vec<Count>,
}

/// `GET /admin`.
#[derive(Template)]
#[template(path = "admin/dashboard.html")]
pub struct DashboardPage {
    /// The page's language.
    pub t: &'static Strings,
    /// The panel's words.
    pub a: &'static AdminStrings,
    /// Around the content.
    pub frame: Frame,
    /// Apps, sessions, outbox.
    pub tiles: Vec<Tile>,
    /// The chart of the last 48 hours (SVG): a wide and a compact drawing.
    pub chart: String,
    /// Today and the week.
    pub periods: Vec<Period>,
}

/// The outcomes of SPEC §3.5, in order, with their words.
pub fn outcomes(a: &'static AdminStrings) -> [(&'static str, &'static str); 5] {
    [
        ("success", a.outcome_success),
        ("wrong_code", a.outcome_wrong_code),
        ("expired", a.outcome_expired),
        ("used", a.outcome_used),
        ("refused", a.outcome_refused),
    ]
}

fn period(a: &'static AdminStrings, title: &'static str, counts: &[(String, i64)]) -> Period {
    Period {
        title,
        counts: outcomes(a)
            .into_iter()
            .map(|(key, label)| Count {
                label,
                value: counts
                    .iter()
                    .filter(|(o, _)| o == key)
                    .map(|(_, n)| *n)
                    .sum(),
            })
            .collect(),
    }
}

/// SPEC §3.5 `GET /admin`: sign-ins today and this week by outcome, the
/// outbox, apps, live sessions and sign-ins per hour over 48 hours.
pub async fn page(State(state): State<AppState>, ctx: Ctx) -> Result<Response> {
    let a = ctx.a;
    let d = postern_auth::admin::dashboard::dashboard(&state, &ctx.who).await?;
    let mut tiles = vec![
        Tile {
            value: d.apps,
            label: a.apps_count,
            href: Some("/admin/apps"),
        },
        Tile {
            value: d.live_sessions,
            label: a.live_sessions,
            href: None,
        },
    ];
    if let Some((pending, failed)) = d.outbox {
        tiles.push(Tile {
            value: pending,
            label: a.outbox_pending,
            href: Some("/admin/outbox?state=pending"),
        });
        tiles.push(Tile {
            value: failed,
            label: a.outbox_failed,
            href: Some("/admin/outbox?state=failed"),
        });
    }
    let events = d.hourly.iter().flat_map(|&(hour, ok, n)| {
        std::iter::repeat_n((hour, ok), usize::try_from(n).unwrap_or(0))
    });
    let hours: Vec<Hour> = chart::bucket(state.now(), events);
    let words = ChartWords {
        title: a.chart_title,
        bar: a.chart_bar,
    };
    // Two drawings, the stylesheet shows one: at a phone's width the wide
    // one's labels would shrink to a few pixels.
    let chart = [Layout::WIDE, Layout::COMPACT]
        .map(|layout| chart::hourly_svg(&hours, &words, layout))
        .concat();
    let page = DashboardPage {
        t: ctx.t,
        a,
        frame: ctx.frame("/admin"),
        tiles,
        chart,
        periods: vec![
            period(a, a.today, &d.today),
            period(a, a.this_week, &d.week),
        ],
    };
    Ok(ctx.render(&page))
}

/// The branding form's fields the preview follows (unsaved values).
#[derive(Debug, Default, serde::Deserialize)]
pub struct PreviewQuery {
    /// Display name.
    pub brand_name: Option<String>,
    /// `#rrggbb`.
    pub color: Option<String>,
    /// https logo.
    pub logo_url: Option<String>,
    /// Sender name.
    pub sender_name: Option<String>,
    /// The note in the emails.
    pub email_note: Option<String>,
    /// The language of the preview.
    pub preview_locale: Option<String>,
}

/// `GET /admin/apps/{client_id}/email-preview.html`: the app's sign-in
/// email as HTML, with the branding the form holds, for the app page's
/// sandboxed frame.
pub async fn email_preview(
    State(state): State<AppState>,
    ctx: Ctx,
    AppPath(client_id): AppPath<String>,
    AppQuery(q): AppQuery<PreviewQuery>,
) -> Result<Response> {
    let email = postern_auth::admin::dashboard::sign_in_preview(
        &state,
        &ctx.who,
        &client_id,
        super::app_forms::branding_patch(&q),
        q.preview_locale.as_deref().filter(|l| !l.is_empty()),
    )
    .await?;
    Ok((
        ctx.jar,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, super::PREVIEW_CSP),
            (header::X_FRAME_OPTIONS, "SAMEORIGIN"),
        ],
        email.html,
    )
        .into_response())
}
