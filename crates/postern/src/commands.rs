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
//!   ([`AppView`]); `app list` prints one compact [`AppView`] per line (JSON
//!   Lines), in creation order. No secret or hash is ever printed.

use std::io::Write as _;

use postern_core::crypto::{random_token, sha256_b64};
use postern_core::{App, AppSettings, Clock as _, SystemClock};
use postern_store::{Backend, Queries as _, Store};
use serde::Serialize;

use crate::cli::{AppCommand, CreateApp, KeysCommand, MailCommand, SettingArgs, UpdateApp};
use crate::config::{Config, MailConfig};

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

/// An app as the CLI shows it: everything but secrets.
#[derive(Debug, Serialize)]
pub struct AppView<'a> {
    /// Public identifier.
    pub client_id: &'a str,
    /// Name shown to people.
    pub name: &'a str,
    /// Every setting, as stored.
    pub settings: &'a AppSettings,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

impl<'a> From<&'a App> for AppView<'a> {
    fn from(app: &'a App) -> Self {
        Self {
            client_id: &app.client_id,
            name: &app.name,
            settings: &app.settings,
            created_at: app.created_at,
            updated_at: app.updated_at,
        }
    }
}

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
            let store = open_store(config).await?;
            let dir = std::env::current_dir().map_err(anyhow::Error::from)?;
            let (master, _) = crate::config::resolve_master_key(config, store.backend(), &dir)?;
            let secrets = std::sync::Arc::new(postern_core::Secrets::new(&master));
            let clock: std::sync::Arc<dyn postern_core::Clock> =
                std::sync::Arc::new(postern_core::SystemClock);
            let keys = postern_auth::keys::KeyManager::load(store.clone(), secrets, clock)
                .await
                .map_err(anyhow::Error::from)?;
            keys.rotate().await.map_err(anyhow::Error::from)?;
            store.close().await;
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
    // Refuse bad input before touching the database.
    App::validate(&args.name, &mut settings).map_err(|e| CommandError::Invalid(e.to_string()))?;

    let now = SystemClock.now();
    let app = App {
        // Hex, so an id never starts with '-' (a shell flag) or needs quoting.
        client_id: hex::encode(postern_core::crypto::random_array::<16>()),
        name: args.name,
        settings,
        created_at: now,
        updated_at: now,
    };
    // `pcs_` lets secret scanners recognise a leaked client secret.
    let secret = (!app.settings.public).then(|| format!("pcs_{}", random_token(32)));
    let secret_hash = secret.as_ref().map(|s| sha256_b64(s.as_bytes()));

    let store = open_store(config).await?;
    // One transaction: an app is never stored without its secret.
    let mut tx = store.begin().await.map_err(db_error)?;
    tx.insert_app(&app, secret_hash.as_deref())
        .await
        .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    store.close().await;

    let client_id = serde_json::to_string(&app.client_id).map_err(anyhow::Error::from)?;
    let line = match &secret {
        Some(secret) => {
            let secret = serde_json::to_string(secret).map_err(anyhow::Error::from)?;
            format!("{{\"client_id\": {client_id}, \"client_secret\": {secret}}}")
        }
        None => format!("{{\"client_id\": {client_id}}}"),
    };
    print_lines([line])
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
    let store = open_store(config).await?;
    // Read, change and write in one transaction so the change applies to
    // what was read.
    let mut tx = store.begin().await.map_err(db_error)?;
    let mut app = tx
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
    apply_settings(s, args.settings);
    // Dropping the transaction on error rolls it back: nothing changes.
    App::validate(&app.name, &mut app.settings)
        .map_err(|e| CommandError::Invalid(e.to_string()))?;
    app.updated_at = SystemClock.now().max(app.updated_at);

    if !tx.update_app(&app).await.map_err(db_error)? {
        return Err(not_found(&app.client_id));
    }
    tx.commit().await.map_err(db_error)?;
    store.close().await;
    print_app(&app)
}

/// Applies the value-carrying flags shared by `create` and `update`; an
/// empty text clears an optional setting.
fn apply_settings(s: &mut AppSettings, args: SettingArgs) {
    let optional = |text: String| (!text.trim().is_empty()).then_some(text);
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
