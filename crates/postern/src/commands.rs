//! The administrative commands: `migrate`, `app ...`, `keys ...` (SPEC §4).
//!
//! Output contract: stdout carries only the command's result, as JSON, so it
//! can be piped into `jq` or a script; everything meant for a person (notes,
//! errors) goes to stderr.
//!
//! * `app create` prints `{"client_id": "...", "client_secret": "..."}` on one
//!   line (no `client_secret` key for a public app). The secret is shown this
//!   once; only its SHA-256 is stored.
//! * `app show ID` and `app update ID` print the app as a pretty JSON object
//!   ([`AppView`], the SPEC §3.5 shape the admin API uses); `app list` prints
//!   one compact [`AppView`] per line (JSON Lines), in creation order. No
//!   secret or hash is ever printed.
//! * `app create` and `app update` go through the same administration
//!   services as the API (one validation, one audit log; actor `cli`).
//! * `admin token create` prints `{"id", "name", "token", "expires_at"}`;
//!   `list` one `{"id", "name", "expires_at"}` per line.

use std::io::Write as _;

use postern_core::crypto::random_token;
use postern_core::{App, AppSettings, Clock as _, SystemClock};
use postern_store::{Backend, Queries as _, Store};

use crate::cli::{
    AdminCommand, AppCommand, CreateApp, KeysCommand, MailCommand, SettingArgs, TokenCommand,
    UpdateApp,
};
use crate::config::{Config, MailConfig};
use postern_auth::admin::{AppPatch, Principal};

/// How a command failed; decides the exit code.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The input was refused (bad flag values, invalid settings): exit code 2.
    #[error("{0}")]
    Invalid(String),
    /// The command exists but does not work yet: exit code 2.
    #[error("{0}")]
    NotAvailable(&'static str),
    /// The named thing does not exist: exit code 1.
    #[error("{0}")]
    NotFound(String),
    /// Anything else (database unreachable, I/O): exit code 1.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl CommandError {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Invalid(_) | Self::NotAvailable(_) => 2,
            Self::NotFound(_) | Self::Failed(_) => 1,
        }
    }
}

type Result<T = ()> = std::result::Result<T, CommandError>;

/// An app as the CLI shows it: the one shape of SPEC §3.5, the same as
/// the admin API's.
pub use postern_auth::admin::AppView;

/// `postern mail test ADDRESS`: builds a test message as the outbox would
/// (sender, headers, DKIM) and hands it to the configured transport at
/// once, bypassing the outbox. Prints what became of it on stdout: the SMTP
/// server's reply code and text, or where the stdout/file transport put
/// it. A refusal or connection problem is an error (exit 1) that says why.
pub async fn mail(command: MailCommand, config: &Config) -> Result {
    use postern_mail::{build_message, Delivery, DevInbox, Mailbox, OutgoingEmail, Transport};

    let MailCommand::Test { address } = command;
    let to = postern_core::EmailAddress::parse(&address)
        .map_err(|e| CommandError::Invalid(format!("{address:?} is not an email address: {e}")))?;
    let dkim = crate::serve::open_dkim(config)
        .map_err(|e| CommandError::Invalid(format!("configuration error: {e}")))?;
    let transport = match &config.mail {
        MailConfig::Stdout => Transport::Stdout(DevInbox::new()),
        MailConfig::File(dir) => Transport::File(dir.clone()),
        MailConfig::Smtp(url) => crate::serve::smtp_transport(config, url)?,
    };
    let from: Mailbox =
        config.mail_from.raw.parse().map_err(|_| {
            CommandError::Invalid("POSTERN_MAIL_FROM is not a valid mailbox".into())
        })?;
    let text = "This is a test message from Postern (`postern mail test`).\n\n\
                If it arrived, Postern can deliver sign-in emails with this configuration.\n";
    let email = OutgoingEmail {
        to: to.as_str().to_owned(),
        from_name: None,
        subject: "Postern test message".to_owned(),
        text: text.to_owned(),
        html: format!("<p>{}</p>", text.trim_end().replace("\n\n", "</p><p>")),
        locale: "en".to_owned(),
    };
    let domain = config
        .mail_from
        .address
        .rsplit_once('@')
        .map_or("localhost", |(_, d)| d);
    let message_id = format!("<{}@{domain}>", random_token(18));
    let now = SystemClock.now();
    let mut message = build_message(&email, &message_id, &from, now)
        .map_err(|e| CommandError::Failed(anyhow::anyhow!("could not build the message: {e}")))?;
    if let Some(dkim) = dkim {
        dkim.sign(&mut message, now);
    }
    let delivery = Delivery {
        outbox_id: "test",
        email: &email,
        message: &message,
        now,
    };
    let result = transport.deliver(&delivery).await;
    transport.close().await;
    match result {
        Ok(receipt) => {
            println!("{receipt}");
            Ok(())
        }
        Err(e) => Err(CommandError::Failed(anyhow::anyhow!(
            "the test message was not delivered ({}): {e}",
            transport.kind()
        ))),
    }
}

/// `postern migrate`: applies every pending migration.
pub async fn migrate(config: &Config) -> Result {
    let store = open_store(config).await?;
    store.close().await;
    let backend = match store.backend() {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    };
    eprintln!("postern: database migrations applied ({backend})");
    Ok(())
}

/// `postern keys ...`.
///
/// `rotate` publishes a new key per algorithm in the JWKS at once; every
/// running instance starts signing with it after
/// [`postern_auth::keys::PUBLISH_BEFORE_USE`], so relying parties that cache
/// the JWKS see it before the first token it signs.
pub async fn keys(command: KeysCommand, config: &Config) -> Result {
    match command {
        KeysCommand::Rotate => {
            // Through the admin service, as `POST /keys/rotate`: the same
            // rule and an audit record (actor `cli`) in the rotation's
            // own transaction.
            let svc = cli_services(config).await?;
            postern_auth::admin::ops::rotate_keys(&svc, &Principal::cli())
                .await
                .map_err(service_error)?;
            svc.store.close().await;
            eprintln!(
                "postern: new signing keys are published; they start signing in {} and the old keys stay published until their tokens expire",
                postern_core::duration::format_duration(postern_auth::keys::PUBLISH_BEFORE_USE)
            );
            Ok(())
        }
    }
}

/// `postern app ...`. Migrates the database first, so a fresh one works.
pub async fn app(command: AppCommand, config: &Config) -> Result {
    match command {
        AppCommand::Create(args) => create_app(*args, config).await,
        AppCommand::List => list_apps(config).await,
        AppCommand::Show { client_id } => show_app(&client_id, config).await,
        AppCommand::Update(args) => update_app(*args, config).await,
    }
}

async fn create_app(args: CreateApp, config: &Config) -> Result {
    let mut settings = AppSettings {
        redirect_uris: args.redirect_uris,
        post_logout_redirect_uris: args.post_logout_redirect_uris,
        public: args.public,
        first_party: args.first_party,
        signup_allowed: !args.no_signup,
        allowed_domains: args.allowed_domains,
        bind_ip_range: args.bind_ip_range,
        ..AppSettings::default()
    };
    apply_settings(&mut settings, args.settings);
    // Refuse bad input before touching the database: the services' one
    // validation, which `create` runs again on what it stores.
    postern_auth::admin::apps::validate(&args.name, &mut settings).map_err(invalid)?;
    let svc = cli_services(config).await?;
    let fields = patch_of(&args.name, &settings);
    let created = postern_auth::admin::apps::create(
        &svc,
        &Principal::cli(),
        postern_auth::admin::AppCreate { fields },
    )
    .await
    .map_err(service_error)?;
    svc.store.close().await;

    let client_id = serde_json::to_string(&created.app.client_id).map_err(anyhow::Error::from)?;
    let line = match &created.client_secret {
        Some(secret) => {
            let secret = serde_json::to_string(secret).map_err(anyhow::Error::from)?;
            format!("{{\"client_id\": {client_id}, \"client_secret\": {secret}}}")
        }
        None => format!("{{\"client_id\": {client_id}}}"),
    };
    print_lines([line])
}

/// Every field of an app as a change: what `create` and `update` hand to
/// the services.
fn patch_of(name: &str, s: &AppSettings) -> AppPatch {
    let b = &s.branding;
    let value = serde_json::json!({
        "name": name,
        "public": s.public,
        "first_party": s.first_party,
        "enabled": s.enabled,
        "redirect_uris": s.redirect_uris,
        "post_logout_redirect_uris": s.post_logout_redirect_uris,
        "initiate_login_uri": s.initiate_login_uri,
        "owners": s.owners,
        "settings": {
            "link_ttl": s.link_ttl,
            "session_max_age": s.session_max_age,
            "device_policy": s.device_policy,
            "passkeys": s.passkeys,
            "signup": s.signup_allowed,
            "allowed_domains": s.allowed_domains,
            "bind_ip_range": s.bind_ip_range,
            "subject_type": s.subject_type,
            "locale": s.locale,
            "consent": s.consent,
            "id_token_alg": s.id_token_alg,
            "token_email": s.token_email,
            "link_requests_per_hour": s.link_requests_per_hour,
        },
        "branding": {
            "name": b.name, "logo_url": b.logo_url, "color": b.color,
            "sender_name": b.sender_name, "email_note": b.email_note,
        },
    });
    serde_json::from_value(value).expect("the app shape reads back")
}

async fn list_apps(config: &Config) -> Result {
    let store = open_store(config).await?;
    let apps = store
        .conn()
        .await
        .map_err(db_error)?
        .apps()
        .await
        .map_err(db_error)?;
    store.close().await;
    let lines = apps
        .iter()
        .map(|app| serde_json::to_string(&AppView::from(app)))
        .collect::<serde_json::Result<Vec<_>>>()
        .map_err(anyhow::Error::from)?;
    print_lines(lines)
}

async fn show_app(client_id: &str, config: &Config) -> Result {
    let store = open_store(config).await?;
    let app = store
        .conn()
        .await
        .map_err(db_error)?
        .app(client_id)
        .await
        .map_err(db_error)?;
    store.close().await;
    let app = app.ok_or_else(|| not_found(client_id))?;
    print_app(&app)
}

async fn update_app(args: UpdateApp, config: &Config) -> Result {
    let svc = cli_services(config).await?;
    let mut app = svc
        .store
        .conn()
        .await
        .map_err(db_error)?
        .app(&args.client_id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| not_found(&args.client_id))?;

    if let Some(name) = args.name {
        app.name = name;
    }
    let s = &mut app.settings;
    if !args.redirect_uris.is_empty() {
        s.redirect_uris = args.redirect_uris;
    }
    if !args.post_logout_redirect_uris.is_empty() || args.clear_post_logout_redirect_uris {
        s.post_logout_redirect_uris = args.post_logout_redirect_uris;
    }
    if !args.allowed_domains.is_empty() || args.clear_allowed_domains {
        s.allowed_domains = args.allowed_domains;
    }
    // clap refuses each contradictory pair, so at most one of each is set.
    if args.first_party || args.third_party {
        s.first_party = args.first_party;
    }
    if args.signup || args.no_signup {
        s.signup_allowed = args.signup;
    }
    if args.bind_ip_range || args.no_bind_ip_range {
        s.bind_ip_range = args.bind_ip_range;
    }
    if args.no_token_email {
        s.token_email = false;
    }
    let owners_given = !args.settings.owners.is_empty() || args.settings.no_owners;
    apply_settings(s, args.settings);
    postern_auth::admin::apps::validate(&app.name, &mut app.settings).map_err(invalid)?;
    // The services re-read, apply and validate in one transaction.
    let mut patch = patch_of(&app.name, &app.settings);
    patch.public = None;
    // Owners are sent only when given: the audit log then names the change.
    if !owners_given {
        patch.owners = None;
    }
    let view = postern_auth::admin::apps::update(&svc, &Principal::cli(), &app.client_id, patch)
        .await
        .map_err(|e| match e {
            postern_auth::AuthError::NotFound => not_found(&args.client_id),
            e => service_error(e),
        })?;
    svc.store.close().await;
    let text = serde_json::to_string_pretty(&view).map_err(anyhow::Error::from)?;
    print_lines([text])
}

/// Applies the value-carrying flags shared by `create` and `update`; an
/// empty text clears an optional setting.
fn apply_settings(s: &mut AppSettings, args: SettingArgs) {
    let optional = |text: String| (!text.trim().is_empty()).then_some(text);
    // clap refuses `--enabled` with `--disabled`, `--owner` with `--no-owners`.
    if let Some(v) = args.enabled {
        s.enabled = v;
    }
    if args.disabled {
        s.enabled = false;
    }
    if !args.owners.is_empty() || args.no_owners {
        s.owners = args.owners;
    }
    if let Some(v) = args.initiate_login_uri {
        s.initiate_login_uri = optional(v);
    }
    if let Some(v) = args.device_policy {
        s.device_policy = v.into();
    }
    if let Some(v) = args.passkeys {
        s.passkeys = v.into();
    }
    if let Some(v) = args.link_ttl {
        s.link_ttl = v;
    }
    if let Some(v) = args.session_max_age {
        s.session_max_age = v.0;
    }
    if let Some(v) = args.subject_type {
        s.subject_type = v.into();
    }
    if let Some(v) = args.locale {
        s.locale = v;
    }
    if let Some(v) = args.consent {
        s.consent = v.into();
    }
    if let Some(v) = args.id_token_alg {
        s.id_token_alg = v.into();
    }
    if let Some(v) = args.token_email {
        s.token_email = v;
    }
    if let Some(v) = args.link_requests_per_hour {
        s.link_requests_per_hour = v;
    }
    if let Some(v) = args.brand_name {
        s.branding.name = optional(v);
    }
    if let Some(v) = args.brand_logo_url {
        s.branding.logo_url = optional(v);
    }
    if let Some(v) = args.brand_color {
        s.branding.color = optional(v);
    }
    if let Some(v) = args.sender_name {
        s.branding.sender_name = optional(v);
    }
    if let Some(v) = args.email_note {
        s.branding.email_note = optional(v);
    }
}

/// Connects to the configured database and applies pending migrations.
async fn open_store(config: &Config) -> Result<Store> {
    let store = Store::connect(&config.database_url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
    store
        .migrate()
        .await
        .map_err(|e| anyhow::anyhow!("cannot migrate the database: {e}"))?;
    Ok(store)
}

fn db_error(e: postern_store::StoreError) -> CommandError {
    CommandError::Failed(anyhow::anyhow!("database error: {e}"))
}

fn not_found(client_id: &str) -> CommandError {
    CommandError::NotFound(format!("no app with client_id {client_id:?}"))
}

fn print_app(app: &App) -> Result {
    let text = serde_json::to_string_pretty(&AppView::from(app)).map_err(anyhow::Error::from)?;
    print_lines([text])
}

/// Writes lines to stdout; a closed pipe (`| head`) is not a crash.
fn print_lines(lines: impl IntoIterator<Item = String>) -> Result {
    let mut out = std::io::stdout().lock();
    for line in lines {
        match writeln!(out, "{line}") {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            other => other.map_err(anyhow::Error::from)?,
        }
    }
    out.flush()
        .or_else(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(anyhow::Error::from)?;
    Ok(())
}

fn invalid(e: postern_auth::AuthError) -> CommandError {
    CommandError::Invalid(e.to_string())
}

fn service_error(e: postern_auth::AuthError) -> CommandError {
    use postern_auth::AuthError as E;
    match e {
        E::InvalidRequest(_) | E::Conflict(_) | E::Forbidden(_) => {
            CommandError::Invalid(e.to_string())
        }
        E::NotFound => CommandError::NotFound(e.to_string()),
        E::Internal(what) => CommandError::Failed(anyhow::anyhow!("{what}")),
        E::Unavailable(source) => CommandError::Failed(anyhow::anyhow!("database error: {source}")),
        other => CommandError::Failed(anyhow::anyhow!("{other}")),
    }
}

/// The services, for commands that change what the API changes: the same
/// rules and the same audit log (actor `cli`).
async fn cli_services(config: &Config) -> Result<postern_auth::Services> {
    let store = open_store(config).await?;
    let dir = std::env::current_dir().map_err(anyhow::Error::from)?;
    let (master, _) = crate::config::resolve_master_key(config, store.backend(), &dir)?;
    // The keyed-hash key survives master-key rotations (admin tokens are
    // keyed hashes): the same working keys as `serve`.
    let secrets = std::sync::Arc::new(crate::ops::secrets_for(&store, &master).await?);
    let clock: std::sync::Arc<dyn postern_core::Clock> = std::sync::Arc::new(SystemClock);
    let keys = postern_auth::keys::KeyManager::load(
        store.clone(),
        std::sync::Arc::clone(&secrets),
        std::sync::Arc::clone(&clock),
    )
    .await
    .map_err(anyhow::Error::from)?;
    Ok(postern_auth::Services {
        settings: std::sync::Arc::new(crate::serve::services_settings(config)),
        store,
        secrets,
        clock,
        keys,
        mail_wake: Default::default(),
        metrics: Default::default(),
    })
}

/// `postern admin token create|list|revoke`.
pub async fn admin(command: AdminCommand, config: &Config) -> Result {
    use postern_auth::admin::tokens;
    let AdminCommand::Token { command } = command;
    let svc = cli_services(config).await?;
    let cli = Principal::cli();
    let lines = match command {
        TokenCommand::Create { name, expires } => {
            let created = tokens::create(&svc, &cli, &name, expires)
                .await
                .map_err(service_error)?;
            vec![serde_json::to_string(&created).map_err(anyhow::Error::from)?]
        }
        TokenCommand::List => tokens::list(&svc, &cli)
            .await
            .map_err(service_error)?
            .iter()
            .map(serde_json::to_string)
            .collect::<serde_json::Result<Vec<_>>>()
            .map_err(anyhow::Error::from)?,
        TokenCommand::Revoke { id } => {
            tokens::revoke(&svc, &cli, &id).await.map_err(|e| match e {
                postern_auth::AuthError::NotFound => {
                    CommandError::NotFound(format!("no live admin token with id {id:?}"))
                }
                e => service_error(e),
            })?;
            eprintln!("postern: admin token {id} revoked");
            Vec::new()
        }
    };
    svc.store.close().await;
    print_lines(lines)
}
