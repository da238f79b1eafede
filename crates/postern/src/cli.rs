//! The command line (SPEC §4).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use postern_core::duration::parse_duration;
use postern_core::{ConsentMode, DevicePolicy, IdTokenAlg, PasskeyPolicy, SubjectType};

use crate::config::Overrides;

/// Passwordless sign-in server: magic links, one-time codes, OpenID Connect.
///
/// Settings come from defaults, then postern.toml, then POSTERN_* environment
/// variables, then the flags below.
#[derive(Debug, Parser)]
#[command(name = "postern", version, propagate_version = true)]
pub struct Cli {
    /// Configuration file [default: ./postern.toml if it exists; env: POSTERN_CONFIG].
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Database URL, overriding POSTERN_DATABASE_URL.
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Public base URL, overriding POSTERN_PUBLIC_URL.
    #[arg(long, global = true, value_name = "URL")]
    pub public_url: Option<String>,
    /// Listen address, overriding POSTERN_BIND.
    #[arg(long, global = true, value_name = "ADDR")]
    pub bind: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The flags that override configuration settings.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config: self.config.clone(),
            database_url: self.database_url.clone(),
            public_url: self.public_url.clone(),
            bind: self.bind.clone(),
        }
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (migrates the database first).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage apps (OIDC clients).
    App {
        /// What to do with apps.
        #[command(subcommand)]
        command: AppCommand,
    },
    /// Manage signing keys.
    Keys {
        /// What to do with keys.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Administration: admin tokens for the API of SPEC §3.5.
    Admin {
        /// What to do.
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Copy the live SQLite database to FILE (consistent while the server
    /// runs); the master key must be kept as well.
    Backup {
        /// Where to write the copy (must not exist).
        file: PathBuf,
    },
    /// Manage the master key.
    MasterKey {
        /// What to do.
        #[command(subcommand)]
        command: MasterKeyCommand,
    },
    /// Check email delivery.
    Mail {
        /// What to do.
        #[command(subcommand)]
        command: MailCommand,
    },
}

/// `postern admin ...`
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Admin tokens (`pat_…`).
    Token {
        /// What to do with tokens.
        #[command(subcommand)]
        command: TokenCommand,
    },
}

/// `postern admin token ...`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token; prints {"id", "name", "token", "expires_at"} (the token only this once).
    Create {
        /// Its name, shown in the audit log.
        #[arg(long)]
        name: String,
        /// Lifetime (e.g. 90d); default: no expiry.
        #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
        expires: Option<i64>,
    },
    /// Live tokens, one {"id", "name", "expires_at"} per line.
    List,
    /// Revoke a token by its id.
    Revoke {
        /// The token's id.
        id: String,
    },
}

/// `postern mail ...`
#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Send a test message now with the live configuration and print what
    /// the mail server answered (exit 0 if accepted, 1 if not).
    Test {
        /// Where to send it.
        address: String,
    },
}

/// `postern master-key ...`
#[derive(Debug, Subcommand)]
pub enum MasterKeyCommand {
    /// Re-encrypt every sealed value under a new master key, in one
    /// transaction (stop every instance first; start them with the new key).
    Rotate {
        /// File holding the new key (64 hex characters).
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
    },
}

/// `postern app ...`
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Register an app; prints {"client_id": ..., "client_secret": ...} as JSON.
    Create(Box<CreateApp>),
    /// List apps, one JSON object per line.
    List,
    /// Show one app's settings as JSON (never its secret).
    Show {
        /// The app's client_id.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Change an app's settings; only the given flags change.
    Update(Box<UpdateApp>),
}

/// `postern keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Start a signing-key rotation.
    Rotate,
}

/// `postern app create`.
#[derive(Debug, Args)]
pub struct CreateApp {
    /// Name shown to people.
    #[arg(long)]
    pub name: String,
    /// Redirect URI, matched exactly (repeatable).
    #[arg(long = "redirect-uri", value_name = "URI", required = true)]
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URI (repeatable).
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    pub post_logout_redirect_uris: Vec<String>,
    /// Public client: no secret, PKCE required (browser and native apps).
    #[arg(long)]
    pub public: bool,
    /// First-party app: no consent screen unless --consent required.
    #[arg(long)]
    pub first_party: bool,
    /// Unknown addresses may not create an account.
    #[arg(long)]
    pub no_signup: bool,
    /// Bind links and sessions to the /24 (IPv4) or /56 (IPv6) they came from.
    #[arg(long)]
    pub bind_ip_range: bool,
    /// Only these email domains may sign in (repeatable).
    #[arg(long = "allowed-domain", value_name = "DOMAIN")]
    pub allowed_domains: Vec<String>,
    /// Settings shared with `app update`.
    #[command(flatten)]
    pub settings: SettingArgs,
}

/// `postern app update ID`.
#[derive(Debug, Args)]
pub struct UpdateApp {
    /// The app's client_id.
    #[arg(allow_hyphen_values = true)]
    pub client_id: String,
    /// New name.
    #[arg(long)]
    pub name: Option<String>,
    /// Replace the redirect URIs with these (repeatable).
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uris: Vec<String>,
    /// Replace the post-logout redirect URIs with these (repeatable).
    #[arg(
        long = "post-logout-redirect-uri",
        value_name = "URI",
        conflicts_with = "clear_post_logout_redirect_uris"
    )]
    pub post_logout_redirect_uris: Vec<String>,
    /// Remove every post-logout redirect URI.
    #[arg(long)]
    pub clear_post_logout_redirect_uris: bool,
    /// Make the app first-party (no consent screen unless --consent required).
    #[arg(long, conflicts_with = "third_party")]
    pub first_party: bool,
    /// Make the app third-party (consent screen).
    #[arg(long)]
    pub third_party: bool,
    /// Let unknown addresses create an account.
    #[arg(long, conflicts_with = "no_signup")]
    pub signup: bool,
    /// Unknown addresses may not create an account.
    #[arg(long)]
    pub no_signup: bool,
    /// Bind links and sessions to the /24 (IPv4) or /56 (IPv6) they came from.
    #[arg(long, conflicts_with = "no_bind_ip_range")]
    pub bind_ip_range: bool,
    /// Stop binding links and sessions to an IP range.
    #[arg(long)]
    pub no_bind_ip_range: bool,
    /// Keep email addresses out of access and session tokens (the default);
    /// the same as `--token-email=false`.
    #[arg(long, conflicts_with = "token_email")]
    pub no_token_email: bool,
    /// Replace the allowed email domains with these (repeatable).
    #[arg(
        long = "allowed-domain",
        value_name = "DOMAIN",
        conflicts_with = "clear_allowed_domains"
    )]
    pub allowed_domains: Vec<String>,
    /// Allow every email domain again.
    #[arg(long)]
    pub clear_allowed_domains: bool,
    /// Settings shared with `app create`.
    #[command(flatten)]
    pub settings: SettingArgs,
}

/// Per-app settings with a value, on both `app create` and `app update`.
/// On update, an empty value (`--brand-logo-url ""`) clears an optional one.
#[derive(Debug, Args)]
pub struct SettingArgs {
    /// Whether the app signs anyone in; `--enabled=false` is `--disabled`
    /// [default: true].
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub enabled: Option<bool>,
    /// A disabled app signs no one in (its sessions keep working).
    #[arg(long, conflicts_with = "enabled")]
    pub disabled: bool,
    /// An address that manages the app in /admin (repeatable; on update
    /// the list replaces the owners).
    #[arg(long = "owner", value_name = "ADDRESS", conflicts_with = "no_owners")]
    pub owners: Vec<String>,
    /// Remove every owner.
    #[arg(long)]
    pub no_owners: bool,
    /// Where the app starts its own sign-in (OIDC Core §4); empty clears.
    #[arg(long, value_name = "URL")]
    pub initiate_login_uri: Option<String>,
    /// What another browser may do with a link.
    #[arg(long, value_enum, ignore_case = true)]
    pub device_policy: Option<DevicePolicyArg>,
    /// Passkey sign-in for this app [default: optional].
    #[arg(long, value_enum, ignore_case = true)]
    pub passkeys: Option<PasskeysArg>,
    /// Link lifetime, 1m to 24h [default: 15m].
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub link_ttl: Option<i64>,
    /// Maximum session age for this app, shorter than the server's (e.g. 7d); empty clears.
    #[arg(long, value_name = "DURATION", value_parser = optional_duration_arg)]
    pub session_max_age: Option<OptionalDuration>,
    /// How `sub` is computed [default: pairwise].
    #[arg(long, value_enum, ignore_case = true)]
    pub subject_type: Option<SubjectTypeArg>,
    /// Default language of pages and emails [default: en].
    #[arg(long, value_name = "TAG")]
    pub locale: Option<String>,
    /// Consent screen: required, skip, or default (required unless first-party).
    #[arg(long, value_enum, ignore_case = true)]
    pub consent: Option<ConsentArg>,
    /// ID token signature algorithm [default: RS256].
    #[arg(long, value_enum, ignore_case = true)]
    pub id_token_alg: Option<IdTokenAlgArg>,
    /// Also put the person's email address in access tokens (with the email
    /// scope) and headless session tokens, which anyone holding them can
    /// read; `--token-email=false` turns it off again [default: false].
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub token_email: Option<bool>,
    /// Headless API link requests per hour for this app [default: 1000].
    #[arg(long, value_name = "N")]
    pub link_requests_per_hour: Option<u32>,
    /// Name shown in pages and emails instead of the app name.
    #[arg(long, value_name = "TEXT")]
    pub brand_name: Option<String>,
    /// HTTPS URL of the app's logo.
    #[arg(long, value_name = "URL")]
    pub brand_logo_url: Option<String>,
    /// Accent colour, #rrggbb.
    #[arg(long, value_name = "COLOR")]
    pub brand_color: Option<String>,
    /// Display name in the From header of emails.
    #[arg(long, value_name = "TEXT")]
    pub sender_name: Option<String>,
    /// A short note shown in the app's emails, in every language (plain
    /// text, at most 500 characters; empty to remove it).
    #[arg(long, value_name = "TEXT")]
    pub email_note: Option<String>,
}

fn duration_arg(text: &str) -> Result<i64, String> {
    parse_duration(text).map_err(|e| e.to_string())
}

/// A duration in seconds, or none (an empty flag value) to clear a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalDuration(pub Option<i64>);

fn optional_duration_arg(text: &str) -> Result<OptionalDuration, String> {
    if text.trim().is_empty() {
        return Ok(OptionalDuration(None));
    }
    duration_arg(text).map(|s| OptionalDuration(Some(s)))
}

/// `--device-policy`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DevicePolicyArg {
    /// Confirming in any browser signs in that browser.
    #[value(name = "any")]
    Any,
    /// Only the asking browser signs in.
    #[value(name = "same_browser", alias = "same-browser")]
    SameBrowser,
    /// Another device approves by typing a number.
    #[value(name = "remote")]
    Remote,
}

impl From<DevicePolicyArg> for DevicePolicy {
    fn from(arg: DevicePolicyArg) -> Self {
        match arg {
            DevicePolicyArg::Any => Self::Any,
            DevicePolicyArg::SameBrowser => Self::SameBrowser,
            DevicePolicyArg::Remote => Self::Remote,
        }
    }
}

/// `--passkeys`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PasskeysArg {
    /// No passkeys for this app.
    #[value(name = "off")]
    Off,
    /// Offered after an email sign-in, usable to sign in.
    #[value(name = "optional")]
    Optional,
    /// Once a person has one, a link or code alone is not enough.
    #[value(
        name = "required_after_first_sign_in",
        alias = "required-after-first-sign-in"
    )]
    RequiredAfterFirstSignIn,
}

impl From<PasskeysArg> for PasskeyPolicy {
    fn from(arg: PasskeysArg) -> Self {
        match arg {
            PasskeysArg::Off => Self::Off,
            PasskeysArg::Optional => Self::Optional,
            PasskeysArg::RequiredAfterFirstSignIn => Self::RequiredAfterFirstSignIn,
        }
    }
}

/// `--subject-type`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SubjectTypeArg {
    /// A different `sub` per app.
    #[value(name = "pairwise")]
    Pairwise,
    /// The same `sub` for every app.
    #[value(name = "public")]
    Public,
}

impl From<SubjectTypeArg> for SubjectType {
    fn from(arg: SubjectTypeArg) -> Self {
        match arg {
            SubjectTypeArg::Pairwise => Self::Pairwise,
            SubjectTypeArg::Public => Self::Public,
        }
    }
}

/// `--consent`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ConsentArg {
    /// Ask once per set of scopes.
    #[value(name = "required")]
    Required,
    /// Never ask.
    #[value(name = "skip")]
    Skip,
    /// Required unless the app is first-party.
    #[value(name = "default")]
    Default,
}

impl From<ConsentArg> for Option<ConsentMode> {
    fn from(arg: ConsentArg) -> Self {
        match arg {
            ConsentArg::Required => Some(ConsentMode::Required),
            ConsentArg::Skip => Some(ConsentMode::Skip),
            ConsentArg::Default => None,
        }
    }
}

/// `--id-token-alg`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum IdTokenAlgArg {
    /// Ed25519.
    #[value(name = "EdDSA")]
    EdDsa,
    /// ECDSA P-256.
    #[value(name = "ES256")]
    Es256,
    /// RSA PKCS#1 v1.5 (the OIDC default).
    #[value(name = "RS256")]
    Rs256,
}

impl From<IdTokenAlgArg> for IdTokenAlg {
    fn from(arg: IdTokenAlgArg) -> Self {
        match arg {
            IdTokenAlgArg::EdDsa => Self::EdDSA,
            IdTokenAlgArg::Es256 => Self::ES256,
            IdTokenAlgArg::Rs256 => Self::RS256,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn create_takes_every_setting() {
        let cli = Cli::try_parse_from([
            "postern",
            "app",
            "create",
            "--name",
            "N",
            "--redirect-uri",
            "https://a.example/cb",
            "--redirect-uri",
            "https://a.example/cb2",
            "--public",
            "--first-party",
            "--no-signup",
            "--bind-ip-range",
            "--allowed-domain",
            "a.example",
            "--device-policy",
            "same_browser",
            "--link-ttl",
            "5m",
            "--session-max-age",
            "7d",
            "--subject-type",
            "public",
            "--locale",
            "de",
            "--consent",
            "skip",
            "--id-token-alg",
            "eddsa",
            "--brand-color",
            "#112233",
            "--token-email",
        ])
        .unwrap();
        let Command::App {
            command: AppCommand::Create(c),
        } = cli.command
        else {
            panic!()
        };
        assert_eq!(c.redirect_uris.len(), 2);
        assert_eq!(c.settings.link_ttl, Some(300));
        assert_eq!(
            c.settings.session_max_age,
            Some(OptionalDuration(Some(7 * 86_400)))
        );
        assert!(matches!(
            c.settings.id_token_alg,
            Some(IdTokenAlgArg::EdDsa)
        ));
        assert!(matches!(
            c.settings.device_policy,
            Some(DevicePolicyArg::SameBrowser)
        ));
    }

    #[test]
    fn token_email_takes_an_optional_value() {
        let parse = |extra: &[&str]| {
            let mut args = vec!["postern", "app", "update", "ID"];
            args.extend_from_slice(extra);
            match Cli::try_parse_from(args).map(|c| c.command) {
                Ok(Command::App {
                    command: AppCommand::Update(u),
                }) => Ok((u.settings.token_email, u.no_token_email)),
                Ok(_) => panic!(),
                Err(e) => Err(e.kind()),
            }
        };
        assert_eq!(parse(&[]), Ok((None, false)));
        assert_eq!(parse(&["--token-email"]), Ok((Some(true), false)));
        assert_eq!(parse(&["--token-email=true"]), Ok((Some(true), false)));
        assert_eq!(parse(&["--token-email=false"]), Ok((Some(false), false)));
        assert_eq!(parse(&["--no-token-email"]), Ok((None, true)));
        assert!(parse(&["--token-email=maybe"]).is_err());
        // A bare flag never swallows the next argument as its value.
        assert!(parse(&["--token-email", "false"]).is_err());
    }

    #[test]
    fn contradictory_update_flags_are_refused() {
        for pair in [
            ["--signup", "--no-signup"],
            ["--first-party", "--third-party"],
            ["--bind-ip-range", "--no-bind-ip-range"],
            ["--token-email", "--no-token-email"],
            ["--clear-allowed-domains", "--allowed-domain=a.example"],
            ["--enabled", "--disabled"],
            ["--owner=a@example.com", "--no-owners"],
        ] {
            let args = ["postern", "app", "update", "ID", pair[0], pair[1]];
            assert!(Cli::try_parse_from(args).is_err(), "{pair:?}");
        }
    }
}
