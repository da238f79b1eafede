//! `postern serve`: wires configuration, storage, mail and the web layer
//! into one running [`Application`].

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use postern_auth::keys::KeyManager;
use postern_auth::{Services, Settings};
use postern_core::{App, AppSettings, Clock, SystemClock};
use postern_mail::dkim::{Dkim, DkimError};
use postern_mail::{DevInbox, Mailbox, Outbox, Smtp, SmtpSettings, Transport};
use postern_store::{Queries, Store};
use postern_web::geoip::GeoIp;
use postern_web::{AppState, Inner, WebConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{resolve_master_key, Config, ConfigError, MailConfig};

/// How often expired rows are purged.
const PURGE_EVERY: Duration = Duration::from_secs(600);
/// How often signing keys are checked for rotation steps.
const KEY_TICK: Duration = postern_auth::keys::TICK_INTERVAL;

/// Every JSON endpoint the server serves, `(method, path)` with the method
/// in lower case: the web crate's tables and the admin API's, what
/// `/openapi.json` must describe, each one.
pub fn json_routes() -> Vec<(&'static str, String)> {
    let mut all = postern_web::json_routes();
    all.extend(postern_admin_web::json_routes());
    all
}

/// A built server: listening, migrated, not yet serving.
pub struct Application {
    listener: TcpListener,
    port: u16,
    state: AppState,
    outbox: Outbox,
    history_retention: i64,
    shutdown_grace: Duration,
    serve_options: postern_web::ServeOptions,
}

impl Application {
    /// Connects and migrates the database, loads the master key (creating
    /// `postern.key` in `dir` for SQLite when none is configured), and
    /// binds the listener. `clock` is the system clock outside tests.
    pub async fn build(config: &Config, clock: Arc<dyn Clock>, dir: &Path) -> anyhow::Result<Self> {
        // Files named by settings first: a mistake there is a configuration
        // error, reported before anything is created.
        let dkim = open_dkim(config)?;
        let geoip = open_geoip(config)?;
        let store = Store::connect(&config.database_url)
            .await
            .context("could not open the database (POSTERN_DATABASE_URL)")?;
        store
            .migrate()
            .await
            .context("could not apply database migrations")?;
        let (master_key, notice) = resolve_master_key(config, store.backend(), dir)?;
        if let Some(notice) = notice {
            tracing::warn!("{notice}");
        }
        let secrets = Arc::new(crate::ops::secrets_for(&store, &master_key).await?);
        let dev_inbox = matches!(config.mail, MailConfig::Stdout).then(DevInbox::new);
        let transport = match &config.mail {
            MailConfig::Stdout => Transport::Stdout(dev_inbox.clone().unwrap_or_default()),
            MailConfig::File(dir) => {
                std::fs::create_dir_all(dir).with_context(|| {
                    format!("could not create the mail directory {}", dir.display())
                })?;
                Transport::File(dir.clone())
            }
            MailConfig::Smtp(url) => smtp_transport(config, url)?,
        };
        let from: Mailbox = config
            .mail_from
            .raw
            .parse()
            .context("POSTERN_MAIL_FROM is not a valid mailbox")?;
        let mut outbox = Outbox::new(
            store.clone(),
            Arc::clone(&secrets),
            transport,
            from,
            Arc::clone(&clock),
        );
        // One registry per server: each crate adds its series, the web
        // layer shows them all at /metrics.
        let mut registry = prometheus_client::registry::Registry::with_prefix("postern");
        let auth_metrics = postern_auth::metrics::AuthMetrics::default();
        auth_metrics.register(&mut registry);
        let outbox_metrics = postern_mail::OutboxMetrics::default();
        outbox_metrics.register(&mut registry);
        outbox = outbox.with_metrics(outbox_metrics);
        if let Some(dkim) = dkim {
            tracing::info!(
                domain = dkim.domain(),
                selector = dkim.selector(),
                algorithm = dkim.algorithm(),
                "signing email with DKIM"
            );
            outbox = outbox.with_dkim(dkim);
        }
        let dev_mail = dev_inbox.is_some()
            && config.is_loopback_public_url()
            && config.bind.ip().is_loopback();
        let settings = Arc::new(services_settings(config));
        let web = WebConfig {
            settings: Arc::clone(&settings),
            trusted_proxies: config.trusted_proxies.clone(),
            dev_mail,
            geoip,
            metrics_public: config.metrics_public,
        };
        let keys = KeyManager::load(store.clone(), Arc::clone(&secrets), Arc::clone(&clock))
            .await
            .context("could not load or create the signing keys")?;
        ensure_account_app(&store, &settings, clock.now()).await?;
        let services = Services {
            settings,
            store,
            secrets,
            clock,
            keys,
            mail_wake: outbox.queue(),
            metrics: auth_metrics,
        };
        let state = AppState::new(Inner {
            services,
            config: web,
            dev_inbox,
            origins: postern_auth::oidc::Origins::new(),
            metrics: postern_web::metrics::Metrics::new(registry),
        });
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("could not listen on {} (POSTERN_BIND)", config.bind))?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            listener,
            port,
            state,
            outbox,
            history_retention: config.history_retention,
            shutdown_grace: Duration::from_secs(u64::try_from(config.shutdown_grace).unwrap_or(10)),
            serve_options: postern_web::ServeOptions {
                max_connections: config.max_connections as usize,
            },
        })
    }

    /// The port it listens on (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state (tests read the store and the development inbox).
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// The outbox's delivery counters (for metrics).
    pub fn outbox_counters(&self) -> Arc<postern_mail::DeliveryCounters> {
        self.outbox.counters()
    }

    /// Serves until `shutdown` completes, then stops within the shutdown
    /// grace (`POSTERN_SHUTDOWN_GRACE`): stops accepting connections, lets
    /// in-flight requests finish (answered in full), then lets the outbox
    /// deliver what they queued and finish the deliveries under way, and
    /// hands back the leases of any message left. Requests still running
    /// when the grace runs out are cut off.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let grace = self.shutdown_grace;
        let (stop_tx, stop_rx) = watch::channel(None::<Duration>);
        let stopped = |mut rx: watch::Receiver<Option<Duration>>| async move {
            match rx.wait_for(Option::is_some).await {
                Ok(left) => left.unwrap_or_default(),
                Err(_) => Duration::ZERO,
            }
        };
        // Before the first request: leases taken from now on are this run's.
        self.outbox.take_back_leases().await;
        let worker = tokio::spawn(self.outbox.run_until(stopped(stop_rx.clone())));
        let purger = tokio::spawn(purge_loop(
            self.state.clone(),
            self.history_retention,
            stopped(stop_rx.clone()),
        ));
        let key_ticker = tokio::spawn(key_loop(self.state.clone(), stopped(stop_rx)));
        // The composition root: the web crate's routes and the
        // administration faces, under one set of middleware, and the
        // OpenAPI document of both.
        let router = postern_web::router(
            self.state.clone(),
            postern_admin_web::faces(&self.state),
            crate::openapi::document,
        );
        tracing::info!(port = self.port, url = %self.state.config.issuer(), "Postern is listening");
        // When the signal comes, the HTTP server stops accepting; the timer
        // starts then.
        let (signalled_tx, signalled) = tokio::sync::oneshot::channel::<tokio::time::Instant>();
        let since = Arc::new(std::sync::OnceLock::new());
        let stopping_at = Arc::clone(&since);
        let http = postern_web::serve(self.listener, router, self.serve_options, async move {
            shutdown.await;
            let now = tokio::time::Instant::now();
            let _ = stopping_at.set(now);
            let _ = signalled_tx.send(now);
        });
        let mut http = std::pin::pin!(http);
        let result = tokio::select! {
            result = &mut http => result,
            () = async {
                if let Ok(at) = signalled.await {
                    tokio::time::sleep_until(at + grace).await;
                } else {
                    std::future::pending::<()>().await;
                }
            } => {
                tracing::warn!(grace_secs = grace.as_secs(), "requests still running when the shutdown grace ran out were cut off");
                Ok(())
            }
        };
        // What is left of the grace goes to the outbox (at least a moment to
        // hand back its leases).
        let left = since
            .get()
            .map(|at| grace.saturating_sub(at.elapsed()))
            .unwrap_or(grace)
            .max(Duration::from_millis(500));
        let _ = stop_tx.send(Some(left));
        let _ = worker.await;
        let _ = purger.await;
        let _ = key_ticker.await;
        self.state.store.close().await;
        result.context("the HTTP server failed")
    }
}

/// The DKIM key of `POSTERN_DKIM_*`, read and checked; a key that cannot
/// be used is a configuration error naming the setting.
pub fn open_dkim(config: &Config) -> Result<Option<Arc<Dkim>>, ConfigError> {
    let Some(settings) = &config.dkim else {
        return Ok(None);
    };
    let file = &settings.key_file;
    let dkim =
        Dkim::from_file(&settings.selector, &settings.domain, &file.path).map_err(|e| match e {
            DkimError::Unreadable(_) => file.invalid(e),
            _ => file.invalid(format!("{}: {e}", file.path.display())),
        })?;
    Ok(Some(Arc::new(dkim)))
}

/// The GeoIP database of `POSTERN_GEOIP_DB`, opened and checked; one that
/// cannot be used is a configuration error naming the setting.
pub fn open_geoip(config: &Config) -> Result<Option<Arc<GeoIp>>, ConfigError> {
    let Some(file) = &config.geoip_db else {
        return Ok(None);
    };
    let db = GeoIp::open(&file.path).map_err(|e| {
        file.invalid(format!(
            "cannot use {} as a GeoIP database (a MaxMind .mmdb file such as \
             GeoLite2-City.mmdb): {e}",
            file.path.display()
        ))
    })?;
    Ok(Some(Arc::new(db)))
}

/// The SMTP transport of `POSTERN_MAIL=smtp…` (connects lazily), greeting
/// servers with the public URL's host name.
pub fn smtp_transport(config: &Config, url: &url::Url) -> anyhow::Result<Transport> {
    let mut settings = SmtpSettings::from_url(url, config.smtp_password.clone())
        .map_err(|e| anyhow::anyhow!("POSTERN_MAIL: {e}"))?;
    settings.connections = config.smtp_connections as usize;
    if let Some(host) = config.public_url_parsed().host_str() {
        settings.hello_name = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
    }
    tracing::info!(server = %settings.display_url(), connections = settings.connections, "delivering email by SMTP");
    let smtp = Smtp::new(settings).map_err(|e| anyhow::anyhow!("POSTERN_MAIL: {e}"))?;
    Ok(Transport::Smtp(smtp))
}

/// Deletes expired rows now and every [`PURGE_EVERY`] until `shutdown`.
async fn purge_loop(state: AppState, retention: i64, shutdown: impl Future) {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let now = state.now();
        let purged = async {
            state
                .store
                .conn()
                .await?
                .purge_expired(now, now - retention)
                .await
        };
        match purged.await {
            Ok(p) => tracing::debug!(?p, "purged expired rows"),
            Err(e) => tracing::warn!(error = %e, "could not purge expired rows"),
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(PURGE_EVERY) => {}
        }
    }
}

/// Runs the signing keys' automatic step (publish, promote, retire, rotate)
/// every [`KEY_TICK`] until `shutdown`.
async fn key_loop(state: AppState, shutdown: impl Future) {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(KEY_TICK) => {}
        }
        if let Err(e) = state.keys.tick().await {
            tracing::warn!(error = %e, "signing-key maintenance failed; will retry");
        }
    }
}

/// The client id of Postern's own pages (`/account`, later `/admin`).
pub use postern_auth::account::ACCOUNT_CLIENT_ID;

/// Registers the built-in first-party app that Postern's own pages sign in
/// through, pointing at this server's public URL (updated if it changed).
async fn ensure_account_app(store: &Store, settings: &Settings, now: i64) -> anyhow::Result<()> {
    let issuer = settings.issuer();
    let mut settings = AppSettings {
        redirect_uris: vec![format!("{issuer}/account/callback")],
        post_logout_redirect_uris: vec![format!("{issuer}/account")],
        public: true,
        first_party: true,
        ..AppSettings::default()
    };
    if let Err(e) = App::validate("Postern account", &mut settings) {
        tracing::warn!("the built-in account app is not registered: {e}");
        return Ok(());
    }
    let mut conn = store.conn().await?;
    match conn.app(ACCOUNT_CLIENT_ID).await? {
        Some(mut app) if app.settings.redirect_uris != settings.redirect_uris => {
            app.settings.redirect_uris = settings.redirect_uris;
            app.settings.post_logout_redirect_uris = settings.post_logout_redirect_uris;
            app.updated_at = now;
            conn.update_app(&app).await?;
        }
        Some(_) => {}
        None => {
            let app = App {
                client_id: ACCOUNT_CLIENT_ID.to_owned(),
                name: "Postern account".to_owned(),
                settings,
                created_at: now,
                updated_at: now,
            };
            match conn.insert_app(&app, None).await {
                Ok(()) | Err(postern_store::StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

/// `postern serve`: runs the server in the working directory until SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let dir = std::env::current_dir().context("no working directory")?;
    let app = Application::build(&config, Arc::new(SystemClock), &dir).await?;
    if app.state.dev_inbox.is_some() {
        let url = app.state.config.issuer();
        eprintln!(
            "\nPostern is running at {url}\n  Emails are printed here{}.\n  Next: create an app with `postern app create --name Demo --redirect-uri http://127.0.0.1:3000/callback`\n",
            if app.state.config.dev_mail {
                format!(" and shown at {url}/_dev/mail")
            } else {
                String::new()
            }
        );
    }
    app.run_until(shutdown_signal()).await
}

/// The services' settings from the configuration (shared by `serve` and the
/// administrative commands).
pub fn services_settings(config: &Config) -> Settings {
    Settings {
        public_url: config.public_url_parsed(),
        rate_limit_email_per_hour: config.rate_limit_email_per_hour.into(),
        rate_limit_ip_per_hour: config.rate_limit_ip_per_hour.into(),
        session_idle_ttl: config.session_idle_ttl,
        session_max_age: config.session_max_age,
        mail_from_domain: config
            .mail_from
            .address
            .rsplit_once('@')
            .map(|(_, d)| d.to_owned())
            .unwrap_or_else(|| "localhost".to_owned()),
        admin_emails: config
            .admin_emails
            .iter()
            .map(|e| e.as_str().to_owned())
            .collect(),
        admin_links: config.admin_links,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::{load, Overrides};

    fn config_in(dir: &Path, pairs: &[(&str, &str)]) -> Config {
        let env: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        load(&Overrides::default(), &env, dir).unwrap().0
    }

    #[test]
    fn a_dkim_key_is_read_at_start_up_and_a_bad_one_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let key = "-----BEGIN PRIVATE KEY-----\n\
                   MC4CAQAwBQYDK2VwBCIEIHDqAzebrbQfxyLK2ykQhIq4/O594Yrko0m7woj4UPjz\n\
                   -----END PRIVATE KEY-----\n";
        std::fs::write(dir.path().join("dkim.pem"), key).unwrap();
        std::fs::write(dir.path().join("bad.pem"), "not a key\n").unwrap();
        let with_key = |file: &str| {
            config_in(
                dir.path(),
                &[
                    ("POSTERN_DKIM_KEY_FILE", file),
                    ("POSTERN_DKIM_SELECTOR", "mail2025"),
                    ("POSTERN_DKIM_DOMAIN", "example.com"),
                ],
            )
        };
        let dkim = open_dkim(&with_key("dkim.pem"))
            .unwrap()
            .expect("DKIM configured");
        assert_eq!(
            (dkim.selector(), dkim.domain(), dkim.algorithm()),
            ("mail2025", "example.com", "ed25519-sha256")
        );
        assert!(
            !format!("{dkim:?}").contains("MC4CAQ"),
            "the key never shows"
        );
        assert!(open_dkim(&config_in(dir.path(), &[])).unwrap().is_none());
        for (file, expected) in [
            ("bad.pem", "not an RSA or Ed25519 private key"),
            ("missing.pem", "cannot read"),
        ] {
            let e = open_dkim(&with_key(file)).unwrap_err().to_string();
            assert!(e.starts_with("POSTERN_DKIM_KEY_FILE: "), "{e}");
            assert!(e.contains(file) && e.contains(expected), "{e}");
        }
    }

    #[test]
    fn a_geoip_database_that_cannot_be_opened_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("junk.mmdb"), "not a database\n").unwrap();
        assert!(open_geoip(&config_in(dir.path(), &[])).unwrap().is_none());
        for file in ["missing.mmdb", "junk.mmdb"] {
            let cfg = config_in(dir.path(), &[("POSTERN_GEOIP_DB", file)]);
            let e = open_geoip(&cfg).unwrap_err().to_string();
            assert!(e.starts_with("POSTERN_GEOIP_DB: "), "{e}");
            assert!(e.contains(file) && e.contains("GeoIP database"), "{e}");
        }
    }
}
