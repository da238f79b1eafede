//! Property tests of every parser of untrusted input in the core: email
//! addresses, identifiers, redirect URIs and their matching,
//! `X-Forwarded-For`, `Accept-Language`, `ui_locales`, scopes, durations,
//! one-time codes as typed, PKCE verifiers and JWT headers. Each runs thousands of generated inputs
//! (hostile ones included: control characters, CR/LF, Unicode, huge
//! lengths), must never panic, and states the invariant it checks.

use std::net::IpAddr;
use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use postern_core::app::validate_redirect_uri;
use postern_core::jose::{generate, Alg, Check, KeySet, KeyState, SigningKey};
use postern_core::net::{client_ip, IpCidr};
use postern_core::oauth::{check_pkce, check_text, pkce_matches, Scope};
use postern_core::{App, AppSettings, ClientId, EmailAddress, LoginId};
use proptest::prelude::*;
use secrecy::ExposeSecret as _;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Shrinking stays quick; a failure's seed is printed either way.
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    }
}

/// Text a client might send: anything printable, control characters,
/// the characters mail headers and URLs give meaning to, and Unicode.
fn hostile_text(max: usize) -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        "[a-zA-Z0-9]{1,8}",
        Just("@".to_owned()),
        Just(".".to_owned()),
        Just("\r\n".to_owned()),
        Just("\n".to_owned()),
        Just("\0".to_owned()),
        Just("\t".to_owned()),
        Just(" ".to_owned()),
        Just("<".to_owned()),
        Just(">".to_owned()),
        Just("\"".to_owned()),
        Just(",".to_owned()),
        Just(";".to_owned()),
        Just(":".to_owned()),
        Just("%0d%0a".to_owned()),
        Just("ü".to_owned()),
        Just("ß".to_owned()),
        Just("日本".to_owned()),
        Just("xn--".to_owned()),
        Just("\u{202e}".to_owned()),
        Just("\u{fe0f}".to_owned()),
        any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(pieces, 0..max).prop_map(|v| v.concat())
}

// ---- email addresses ---------------------------------------------------------

/// Something close to an address, so that many cases pass and the
/// invariants of accepted addresses are exercised, not only rejections.
fn address_like() -> impl Strategy<Value = String> {
    (
        "[ \t]{0,2}",
        "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~.-]{0,70}",
        prop_oneof![
            "[a-zA-Z0-9-]{1,20}(\\.[a-zA-Z0-9-]{1,20}){1,3}\\.?",
            Just("bücher.example".to_owned()),
            Just("EXAMPLE.COM".to_owned()),
            Just("例え.テスト".to_owned()),
            Just("xn--bcher-kva.example".to_owned()),
            "[a-z]{1,63}\\.[a-z]{2,6}",
            hostile_text(8),
        ],
        "[ \t]{0,2}",
    )
        .prop_map(|(pre, local, domain, post)| format!("{pre}{local}@{domain}{post}"))
}

fn any_address_input() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => address_like(),
        2 => hostile_text(40),
        1 => any::<String>(),
        1 => "[a-z]{1,300}@[a-z]{1,300}\\.com",
    ]
}

proptest! {
    #![proptest_config(config(4_000))]

    /// Normalization is idempotent, and an accepted address is one bare,
    /// lower-case `local@domain` within RFC 5321's lengths with nothing that
    /// could end or extend a mail header.
    #[test]
    fn email_normalization_is_idempotent_and_header_safe(input in any_address_input()) {
        if let Ok(email) = EmailAddress::parse(&input) {
            let s = email.as_str();
            prop_assert_eq!(EmailAddress::parse(s), Ok(email.clone()), "idempotent");
            prop_assert!(s.len() <= 254, "{}", s);
            let (local, domain) = s.split_once('@').expect("one @");
            prop_assert!(!domain.contains('@'));
            prop_assert!(!local.is_empty() && local.len() <= 64, "{}", s);
            prop_assert!(!domain.is_empty() && domain.len() <= 253, "{}", s);
            prop_assert!(s.is_ascii(), "domains are stored in punycode: {}", s);
            prop_assert_eq!(s.to_ascii_lowercase(), s);
            prop_assert!(
                !s.chars().any(|c| c.is_control() || c.is_whitespace() || "<>()[]\\,;:\"".contains(c)),
                "{:?}", s
            );
            prop_assert_eq!(email.domain(), domain);
        }
    }

    /// Case and the spaces or tabs around an address change nothing.
    #[test]
    fn email_case_and_surrounding_blanks_do_not_matter(input in address_like()) {
        let plain = EmailAddress::parse(&input);
        if input.is_ascii() {
            prop_assert_eq!(EmailAddress::parse(&input.to_ascii_uppercase()), plain.clone());
        }
        prop_assert_eq!(EmailAddress::parse(&format!(" \t{input} ")), plain);
    }
}

// ---- identifiers -------------------------------------------------------------

proptest! {
    #![proptest_config(config(4_000))]

    /// An accepted id is the input unchanged, non-empty, bounded and free
    /// of control characters; parsing it again gives it back.
    #[test]
    fn ids_are_accepted_unchanged_or_refused(input in prop_oneof![hostile_text(30), any::<String>()]) {
        if let Ok(id) = ClientId::parse(&input) {
            prop_assert_eq!(id.as_str(), input.as_str());
            prop_assert!(!input.is_empty() && !input.chars().any(char::is_control));
            prop_assert_eq!(ClientId::parse(id.as_str()).map(|i| i.into_string()), Ok(input.clone()));
        }
        if let Ok(id) = LoginId::parse(&input) {
            prop_assert_eq!(id.as_str(), input.as_str());
            prop_assert!(!input.chars().any(char::is_control));
        }
    }
}

// ---- redirect URIs -------------------------------------------------------------

fn registrable_uri() -> impl Strategy<Value = String> {
    prop_oneof![
        "https://[a-z]{1,10}\\.example(:[0-9]{1,4})?/[a-z/]{0,10}(\\?[a-z]=[a-z0-9]{0,5})?",
        "http://127\\.0\\.0\\.1(:[0-9]{1,4})?/[a-z]{0,6}",
        "http://\\[::1\\](:[0-9]{1,4})?/[a-z]{0,6}",
        "http://localhost(:[0-9]{1,4})?/[a-z]{0,6}",
        "com\\.example\\.[a-z]{1,6}:/[a-z]{0,6}",
    ]
}

/// What an authorization request might carry as `redirect_uri`: registered
/// ones with small changes, hostile text and arbitrary strings.
fn asked_uri(registered: Vec<String>) -> impl Strategy<Value = String> {
    let pick = proptest::sample::select(registered);
    let mutate = prop_oneof![
        Just(""),
        Just("#frag"),
        Just("/"),
        Just("?x=1"),
        Just("%2e%2e/"),
        Just("\t"),
        Just("\n"),
        Just("\r\n"),
        Just("\0"),
        Just(" "),
        Just("@evil.example"),
        Just(".evil.example"),
        Just(":8443"),
        Just("\\"),
    ];
    prop_oneof![
        3 => (pick.clone(), mutate.clone(), 0usize..40).prop_map(|(uri, m, at)| {
            let at = uri.char_indices().map(|(i, _)| i).nth(at).unwrap_or(uri.len());
            format!("{}{m}{}", &uri[..at], &uri[at..])
        }),
        1 => (pick.clone(), mutate).prop_map(|(uri, m)| format!("{uri}{m}")),
        1 => pick.prop_map(|u| u.to_ascii_uppercase()),
        1 => registrable_uri(),
        1 => hostile_text(20),
    ]
}

fn app_with(uris: Vec<String>) -> App {
    App {
        client_id: "app".into(),
        name: "App".into(),
        settings: AppSettings {
            redirect_uris: uris,
            ..AppSettings::default()
        },
        created_at: 0,
        updated_at: 0,
    }
}

/// `uri` with its port removed, when it parses.
fn without_port(uri: &str) -> Option<String> {
    let mut u = url::Url::parse(uri).ok()?;
    u.set_port(None).ok()?;
    Some(u.to_string())
}

proptest! {
    #![proptest_config(config(4_000))]

    /// A redirect URI that could not be registered never matches a
    /// registered one, and a match is the registered text exactly, or
    /// (RFC 8252 §7.3) a loopback URI that differs in its port alone.
    #[test]
    fn a_rejected_redirect_uri_never_matches(
        (registered, asked) in proptest::collection::vec(registrable_uri(), 1..4)
            .prop_map(|r| r.into_iter().filter(|u| validate_redirect_uri(u).is_ok()).collect::<Vec<_>>())
            .prop_filter("one registrable URI", |r: &Vec<String>| !r.is_empty())
            .prop_flat_map(|r| (Just(r.clone()), asked_uri(r)))
    ) {
        let app = app_with(registered.clone());
        if !app.has_redirect_uri(&asked) {
            return Ok(());
        }
        prop_assert!(validate_redirect_uri(&asked).is_ok(), "{:?} was refused, yet matched {:?}", asked, registered);
        if !registered.contains(&asked) {
            let parsed = url::Url::parse(&asked).unwrap();
            prop_assert_eq!(parsed.scheme(), "http");
            prop_assert!(
                registered.iter().any(|r| without_port(r) == without_port(&asked)),
                "{:?} matched {:?}", asked, registered
            );
        }
    }

    /// Registration refuses what may not be a redirect target: no
    /// fragment, no control character, https unless loopback or a
    /// private-use scheme (RFC 8252 §7.1), at most 2000 bytes.
    #[test]
    fn registrable_redirect_uris_are_absolute_and_clean(uri in prop_oneof![registrable_uri(), hostile_text(30), any::<String>()]) {
        if validate_redirect_uri(&uri).is_ok() {
            let parsed = url::Url::parse(&uri).unwrap();
            prop_assert!(parsed.fragment().is_none());
            prop_assert!(!uri.chars().any(char::is_control));
            prop_assert!(uri.len() <= 2000);
            prop_assert!(
                parsed.scheme() == "https" || parsed.scheme() == "http" || parsed.scheme().contains('.'),
                "{}", uri
            );
        }
    }
}

// ---- X-Forwarded-For -----------------------------------------------------------

fn any_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
        Just("127.0.0.1".parse().unwrap()),
        Just("10.0.0.1".parse().unwrap()),
        Just("::ffff:10.0.0.2".parse().unwrap()),
    ]
}

fn xff_entry() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any_ip().prop_map(|ip| ip.to_string()),
        1 => Just("unknown".to_owned()),
        1 => Just("".to_owned()),
        1 => Just(" 10.0.0.7 ".to_owned()),
        1 => Just("[::1]".to_owned()),
        1 => Just("10.0.0.1:8080".to_owned()),
        1 => hostile_text(6),
    ]
}

fn xff_lines() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(
        proptest::collection::vec(xff_entry(), 0..5).prop_map(|v| v.join(",")),
        0..4,
    )
}

fn trusted_nets() -> impl Strategy<Value = Vec<IpCidr>> {
    proptest::collection::vec(
        prop_oneof![
            Just("10.0.0.0/8"),
            Just("127.0.0.1/32"),
            Just("::1/128"),
            Just("192.168.0.0/16"),
            Just("0.0.0.0/0"),
        ]
        .prop_map(|s| s.parse::<IpCidr>().unwrap()),
        0..3,
    )
}

proptest! {
    #![proptest_config(config(4_000))]

    /// The client is the peer unless the peer is a trusted proxy; then it
    /// is an address the header named. Never a trusted proxy while an
    /// untrusted address stood to its right, always canonical (no
    /// IPv4-mapped IPv6).
    #[test]
    fn the_client_address_comes_from_the_peer_or_a_named_hop(
        peer in any_ip(),
        lines in xff_lines(),
        trusted in trusted_nets(),
    ) {
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let ip = client_ip(peer, &refs, &trusted);
        prop_assert_eq!(ip, ip.to_canonical(), "canonical");
        let is_trusted = |a: IpAddr| trusted.iter().any(|n| n.contains(a));
        if !is_trusted(peer.to_canonical()) {
            prop_assert_eq!(ip, peer.to_canonical(), "an untrusted peer's header is ignored");
            return Ok(());
        }
        if ip != peer.to_canonical() {
            let named = refs
                .iter()
                .flat_map(|l| l.split(','))
                .filter_map(|e| e.trim().parse::<IpAddr>().ok())
                .any(|a| a.to_canonical() == ip);
            prop_assert!(named, "{} is not in {:?}", ip, refs);
        }
        // Walking from the right, the first address that is not trusted
        // (before any malformed entry) is the client.
        let mut expected = peer.to_canonical();
        'walk: for line in refs.iter().rev() {
            for entry in line.rsplit(',') {
                let Ok(hop) = entry.trim().parse::<IpAddr>() else { break 'walk };
                expected = hop.to_canonical();
                if !is_trusted(expected) {
                    break 'walk;
                }
            }
        }
        prop_assert_eq!(ip, expected);
    }

    /// Networks parse only as `address[/prefix]` with a prefix the family
    /// allows, and print in a form that parses back to the same network.
    #[test]
    fn networks_round_trip(text in prop_oneof![
        (any_ip(), 0u8..140).prop_map(|(ip, p)| format!("{ip}/{p}")),
        any_ip().prop_map(|ip| ip.to_string()),
        hostile_text(10),
    ]) {
        if let Ok(net) = text.parse::<IpCidr>() {
            let again: IpCidr = net.to_string().parse().unwrap();
            prop_assert_eq!(again.to_string(), net.to_string());
            prop_assert!(net.contains(net.network()));
        }
    }
}

// ---- Accept-Language and ui_locales --------------------------------------------

fn language_tag() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("en".to_owned()),
        Just("de-CH".to_owned()),
        Just("FR_ca".to_owned()),
        Just("*".to_owned()),
        Just("ja".to_owned()),
        Just("zz".to_owned()),
        "[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8}){0,2}",
        hostile_text(4),
    ]
}

fn accept_language() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        (
            language_tag(),
            proptest::option::of(prop_oneof![
                Just("0".to_owned()),
                Just("1".to_owned()),
                Just("0.5".to_owned()),
                Just("abc".to_owned()),
                Just("-1".to_owned()),
                Just("NaN".to_owned()),
                "0\\.[0-9]{1,3}",
            ]),
        )
            .prop_map(|(t, q)| match q {
                Some(q) => format!("{t};q={q}"),
                None => t,
            }),
        0..25,
    )
    .prop_map(|v| v.join(", "))
}

proptest! {
    #![proptest_config(config(4_000))]

    /// The language is always one Postern has; `ui_locales` wins over
    /// `Accept-Language`, which wins over the app's default.
    #[test]
    fn the_negotiated_language_is_supported_and_asked_for_first(
        ui in proptest::option::of(proptest::collection::vec(language_tag(), 0..12).prop_map(|v| v.join(" "))),
        header in proptest::option::of(prop_oneof![accept_language(), hostile_text(30)]),
        default in language_tag(),
    ) {
        let lang = postern_core::locale::negotiate(ui.as_deref(), header.as_deref(), &default);
        prop_assert!(postern_core::locale::SUPPORTED.contains(&lang));
        if let Some(first) = ui.as_deref().and_then(|u| {
            u.split_ascii_whitespace().take(10).find_map(postern_core::locale::supported)
        }) {
            prop_assert_eq!(lang, first);
        }
    }

    /// Of the supported languages in a header, the one with the highest
    /// `q` is chosen.
    #[test]
    fn the_highest_quality_supported_language_wins(
        weights in proptest::collection::btree_set(1u16..=1000, 3..=3)
            .prop_map(|s| s.into_iter().collect::<Vec<_>>())
            .prop_shuffle(),
        other in proptest::collection::vec("[g-z]{2}", 0..5),
    ) {
        let langs = ["en", "de", "fr"];
        let mut items: Vec<String> = langs
            .iter()
            .zip(&weights)
            .map(|(l, w)| format!("{l};q={:.3}", f64::from(*w) / 1000.0))
            .collect();
        items.extend(other.iter().map(|o| format!("{o};q=1")));
        let best = langs
            .iter()
            .zip(&weights)
            .max_by_key(|(_, w)| **w)
            .map(|(l, _)| *l)
            .unwrap();
        let header = items.join(",");
        prop_assert_eq!(postern_core::locale::negotiate(None, Some(&header), "en"), best);
    }
}

// ---- scopes, durations, PKCE, opaque text --------------------------------------

proptest! {
    #![proptest_config(config(4_000))]

    /// Parsing a scope is canonical: known scopes only, `openid` first,
    /// each once, and printing then parsing again changes nothing.
    #[test]
    fn scopes_are_canonical(text in prop_oneof![
        proptest::collection::vec(prop_oneof![
            Just("openid"), Just("email"), Just("profile"), Just("offline_access"),
            Just("bogus"), Just(""), Just("OPENID"),
        ], 0..8).prop_map(|v| v.join(" ")),
        hostile_text(20),
    ]) {
        let scope = Scope::parse(Some(&text));
        let printed = scope.to_string();
        prop_assert_eq!(Scope::parse(Some(&printed)).to_string(), printed.clone());
        prop_assert!(printed.starts_with("openid"));
        let words: Vec<&str> = printed.split(' ').collect();
        let mut unique = words.clone();
        unique.sort_unstable();
        unique.dedup();
        prop_assert_eq!(unique.len(), words.len(), "{}", printed);
    }

    /// A duration is a bounded count and a unit; what is printed parses
    /// back to the same number of seconds.
    #[test]
    fn durations_round_trip(text in prop_oneof!["[0-9]{0,12}[smhdx]?", hostile_text(6)], secs in 0i64..1_000_000_000) {
        if let Ok(s) = postern_core::duration::parse_duration(&text) {
            prop_assert!((0..=999_999_999 * 86_400).contains(&s));
        }
        let printed = postern_core::duration::format_duration(secs);
        prop_assert_eq!(postern_core::duration::parse_duration(&printed), Ok(secs));
    }

    /// PKCE (RFC 7636): only S256 challenges of the right shape are
    /// accepted, and only the verifier that hashes to one matches it.
    #[test]
    fn pkce_accepts_s256_only_and_matches_its_own_verifier(
        verifier in "[A-Za-z0-9._~-]{43,128}",
        noise in prop_oneof![hostile_text(20), "[A-Za-z0-9._~-]{0,130}"],
        method in proptest::option::of(prop_oneof![Just("S256"), Just("plain"), Just("s256"), Just("")]),
        public in any::<bool>(),
    ) {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
        let challenge = URL_SAFE_NO_PAD.encode(digest);
        prop_assert!(pkce_matches(&verifier, &challenge));
        prop_assert_eq!(pkce_matches(&noise, &challenge), noise == verifier);
        if let Ok(Some(c)) = check_pkce(public, Some(&noise), method) {
            prop_assert_eq!(method, Some("S256"));
            prop_assert_eq!(c, noise);
        }
    }

    /// `state` and `nonce`: bounded, no control characters, otherwise kept
    /// byte for byte.
    #[test]
    fn opaque_text_is_kept_exactly_or_refused(text in prop_oneof![hostile_text(30), any::<String>()]) {
        match check_text("state", Some(&text), 64) {
            Ok(Some(kept)) => {
                prop_assert_eq!(&kept, &text);
                prop_assert!(text.len() <= 64 && !text.chars().any(char::is_control));
            }
            Ok(None) => prop_assert!(text.is_empty()),
            Err(_) => prop_assert!(text.len() > 64 || text.chars().any(char::is_control)),
        }
    }
}

// ---- JWT headers -----------------------------------------------------------------

const ISS: &str = "https://id.example";
const NOW: i64 = 1_700_000_000;

/// One key per algorithm, made once: RSA generation is slow.
fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| KeySet {
        keys: Alg::ALL
            .into_iter()
            .map(|alg| {
                let g = generate(alg);
                let mut key = SigningKey::new(
                    &g.kid,
                    alg,
                    KeyState::Active,
                    g.private_pkcs8.expose_secret(),
                )
                .unwrap();
                key.created_at = NOW;
                key.activated_at = Some(NOW);
                key
            })
            .collect(),
    })
}

fn check() -> Check<'static> {
    Check {
        issuer: ISS,
        audience: Some("app-1"),
        now: NOW,
        leeway: 0,
    }
}

fn signed(alg: Alg) -> String {
    let claims = serde_json::json!({
        "iss": ISS, "aud": "app-1", "sub": "u", "iat": NOW, "exp": NOW + 600,
    });
    keys().sign(alg, "JWT", &claims).unwrap()
}

fn header_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::json;
    let kids: Vec<String> = keys().keys.iter().map(|k| k.kid.clone()).collect();
    let alg = prop_oneof![
        Just(json!("none")),
        Just(json!("None")),
        Just(json!("HS256")),
        Just(json!("RS256")),
        Just(json!("EdDSA")),
        Just(json!("ES256")),
        Just(json!("PS256")),
        Just(json!(null)),
        Just(json!(5)),
        hostile_text(6).prop_map(serde_json::Value::from),
    ];
    let kid = prop_oneof![
        proptest::sample::select(kids).prop_map(serde_json::Value::from),
        Just(json!(null)),
        Just(json!("")),
        Just(json!(["x"])),
        hostile_text(8).prop_map(serde_json::Value::from),
    ];
    let typ = prop_oneof![
        Just(json!("JWT")),
        Just(json!("at+jwt")),
        Just(json!("application/JWT")),
        Just(json!(7)),
        hostile_text(4).prop_map(serde_json::Value::from),
    ];
    (
        alg,
        proptest::option::of(kid),
        proptest::option::of(typ),
        proptest::option::of(Just(json!(["exp"]))),
        proptest::option::of(Just(json!("https://evil.example/jwks"))),
    )
        .prop_map(|(alg, kid, typ, crit, jku)| {
            let mut h = serde_json::Map::new();
            h.insert("alg".into(), alg);
            for (k, v) in [("kid", kid), ("typ", typ), ("crit", crit), ("jku", jku)] {
                if let Some(v) = v {
                    h.insert(k.into(), v);
                }
            }
            serde_json::Value::Object(h)
        })
}

proptest! {
    #![proptest_config(config(2_000))]

    /// Any token text is refused without a panic.
    #[test]
    fn arbitrary_token_text_never_verifies(text in prop_oneof![
        hostile_text(40),
        "[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,40}",
        any::<String>(),
    ]) {
        let r = keys().verify::<serde_json::Value>(&text, &Alg::ALL, Some("JWT"), &check());
        prop_assert!(r.is_err());
    }

    /// A genuine token whose header was swapped for another (any `alg`,
    /// `none` included; any `kid`, `typ`, `crit`, `jku`) never verifies:
    /// the signature covers the header, and `none`, `crit` and unknown or
    /// mismatched keys are refused before it is checked.
    #[test]
    fn a_token_with_a_forged_header_never_verifies(
        alg in proptest::sample::select(Alg::ALL.to_vec()),
        header in header_value(),
        drop_signature in any::<bool>(),
    ) {
        let token = signed(alg);
        let mut parts = token.split('.');
        let (original, payload, signature) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        let forged_header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
        prop_assume!(forged_header != original);
        let signature = if drop_signature { "" } else { signature };
        let forged = format!("{forged_header}.{payload}.{signature}");
        let r = keys().verify::<serde_json::Value>(&forged, &Alg::ALL, Some("JWT"), &check());
        prop_assert!(r.is_err(), "a forged header verified: {}", header);
        // The untouched token does verify: the refusal is the forgery's.
        prop_assert!(keys().verify::<serde_json::Value>(&token, &Alg::ALL, Some("JWT"), &check()).is_ok());
    }
}

/// A one-time code as people type or paste it: the digits, with the
/// separators `postern_core::code::clean` drops between any of them.
fn pasted_code() -> impl Strategy<Value = (String, String)> {
    let separator = prop_oneof![
        Just(""),
        Just(" "),
        Just("  "),
        Just("-"),
        Just("\u{2013}"),
        Just("\u{2014}"),
        Just("."),
        Just("\t"),
        Just("\n"),
    ];
    ("[0-9]{6}", proptest::collection::vec(separator, 7)).prop_map(|(digits, seps)| {
        let mut typed = seps[0].to_owned();
        for (digit, sep) in digits.chars().zip(&seps[1..]) {
            typed.push(digit);
            typed.push_str(sep);
        }
        (typed, digits)
    })
}

proptest! {
    #![proptest_config(config(4_000))]

    /// Cleaning a typed code is idempotent, never panics, and whatever it
    /// calls a code is exactly six ASCII digits.
    #[test]
    fn a_cleaned_code_is_six_ascii_digits_or_not_a_code(typed in hostile_text(40)) {
        let once = postern_core::code::clean(&typed);
        prop_assert_eq!(postern_core::code::clean(&once), once.clone());
        if postern_core::code::is_code(&once) {
            prop_assert_eq!(once.len(), 6);
            prop_assert!(once.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    /// Six digits pasted with spaces, dashes or dots anywhere between them
    /// clean to those six digits, and they are a code.
    #[test]
    fn a_pasted_code_cleans_to_its_digits((typed, digits) in pasted_code()) {
        let cleaned = postern_core::code::clean(&typed);
        prop_assert_eq!(&cleaned, &digits);
        prop_assert!(postern_core::code::is_code(&cleaned));
    }

    /// A letter or any other digit count never becomes a code by cleaning.
    #[test]
    fn letters_and_wrong_lengths_stay_no_code(
        digits in "[0-9]{0,12}",
        letter in "[a-zA-Z]",
        at in 0usize..13,
    ) {
        if digits.len() != 6 {
            prop_assert!(!postern_core::code::is_code(&postern_core::code::clean(&digits)));
        }
        let mut with_letter = digits.clone();
        with_letter.insert_str(at.min(digits.len()), &letter);
        prop_assert!(!postern_core::code::is_code(&postern_core::code::clean(&with_letter)));
    }
}
