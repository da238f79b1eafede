//! The words of the hosted pages (`/login`, the check page, the other
//! browser's confirmation, consent, the chooser, errors, `/_dev/mail`), and
//! the words every part of the catalogue shares: time spans
//! ([`Strings::duration_down`], which the emails say a link's lifetime
//! with too), dates, browsers, "your Postern account".

use super::fill;
use crate::duration::{say_duration, DurationWords, Rounding};

/// The pages' strings of one language, and the words all parts share.
#[derive(Debug)]
pub struct Strings {
    /// BCP 47 primary language tag of this catalogue (`"en"`), the pages'
    /// `<html lang>`.
    pub lang: &'static str,
    /// Footer of every page.
    pub footer: &'static str,

    // ---- words used in sentences ---------------------------------------
    /// "1 minute".
    pub one_minute: &'static str,
    /// "{n} minutes".
    pub minutes: &'static str,
    /// "1 hour".
    pub one_hour: &'static str,
    /// "{n} hours".
    pub hours: &'static str,
    /// Month names, January first.
    pub months: [&'static str; 12],
    /// A moment: "{day} {month} {year}, {time} UTC".
    pub date_time: &'static str,
    /// "{browser} on {os}".
    pub browser_on_os: &'static str,
    /// When the user agent says nothing we recognise.
    pub unknown_browser: &'static str,
    /// Postern's own account page as `{app}`: "your Postern account", worded
    /// to fit every sentence that names an app (German: dative).
    pub own_account: &'static str,

    // ---- /login --------------------------------------------------------
    /// Title and heading: "Sign in to {app}".
    pub login_title: &'static str,
    /// Below the heading.
    pub login_intro: &'static str,
    /// Label of the address field.
    pub email_label: &'static str,
    /// The form's button.
    pub login_button: &'static str,
    /// A link back to the page before (the account chooser).
    pub back: &'static str,
    /// Under the address field: nothing was typed.
    pub email_error_empty: &'static str,
    /// Under the address field: not an address.
    pub email_error_invalid: &'static str,
    /// "Did you mean {email}?" for a slip in a common mail domain.
    pub did_you_mean: &'static str,

    // ---- check your email ----------------------------------------------
    /// Title and heading.
    pub check_title: &'static str,
    /// Above the address: "We sent a sign-in link for {app} to".
    pub check_sent: &'static str,
    /// How to go on.
    pub check_how: &'static str,
    /// Label of the code field.
    pub code_label: &'static str,
    /// The code form's button.
    pub code_button: &'static str,
    /// Under the code field: nothing was typed.
    pub code_error_empty: &'static str,
    /// Under the code field: not six digits.
    pub code_error_format: &'static str,
    /// Under the code field: a wrong code.
    pub code_wrong: &'static str,
    /// After a wrong code: one try left.
    pub tries_left_one: &'static str,
    /// After a wrong code: "You have {n} tries left."
    pub tries_left: &'static str,
    /// "The link and the code expire in {duration}."
    pub check_expires: &'static str,
    /// `device_policy = remote`: heading above the number.
    pub remote_title: &'static str,
    /// `device_policy = remote`: what the number is for.
    pub remote_how: &'static str,
    /// `device_policy = remote`: this page goes on by itself.
    pub remote_waiting: &'static str,
    /// Heading of the help when nothing arrives.
    pub help_title: &'static str,
    /// Mail takes a moment.
    pub help_wait: &'static str,
    /// Spam folder.
    pub help_spam: &'static str,
    /// Check the address.
    pub help_address: &'static str,
    /// Link to `/login` to type another address.
    pub use_another_address: &'static str,
    /// Above "Send again".
    pub resend_intro: &'static str,
    /// The "send again" button.
    pub resend_button: &'static str,
    /// The button while its countdown runs: "{s}" is filled by the script.
    pub resend_countdown: &'static str,
    /// After "Send again": "New link sent at {time}."
    pub resent_at: &'static str,

    // ---- the link opened in another browser ----------------------------
    /// Title and heading: "Sign in to {app}?".
    pub confirm_title: &'static str,
    /// Below the heading.
    pub confirm_intro: &'static str,
    /// Label: the address signing in.
    pub label_account: &'static str,
    /// Label: the app.
    pub label_app: &'static str,
    /// Label: the asking browser.
    pub label_from: &'static str,
    /// Label: when it asked.
    pub label_when: &'static str,
    /// Above the button.
    pub confirm_if_you: &'static str,
    /// The button: "Continue to {app}".
    pub confirm_button: &'static str,
    /// Below the button.
    pub confirm_not_you: &'static str,
    /// `device_policy = same_browser`: use the code on the asking device.
    pub same_browser_text: &'static str,
    /// `device_policy = remote`: type the number from the asking device.
    pub remote_confirm_text: &'static str,
    /// Label of the number field.
    pub remote_number_label: &'static str,
    /// The number form's button.
    pub remote_confirm_button: &'static str,
    /// After a right number: heading.
    pub approved_title: &'static str,
    /// After a right number: go back to the asking device.
    pub approved_text: &'static str,

    // ---- consent -------------------------------------------------------
    /// Title and heading: "Allow {app} to know who you are?".
    pub consent_title: &'static str,
    /// Above the list: "{app} will see:".
    pub consent_will_see: &'static str,
    /// "Signed in as {email}" on the consent screen.
    pub signed_in_as: &'static str,
    /// Scope `openid`.
    pub scope_openid: &'static str,
    /// Scope `email`.
    pub scope_email: &'static str,
    /// Scope `email`, with the address: "Your email address: {email}".
    pub scope_email_is: &'static str,
    /// Scope `profile`.
    pub scope_profile: &'static str,
    /// Scope `offline_access`.
    pub scope_offline: &'static str,
    /// "Allow".
    pub allow: &'static str,
    /// "Deny".
    pub deny: &'static str,
    /// Under the buttons: where the person goes next, "You will go back to {host}."
    pub consent_returns_to: &'static str,
    /// Before "Use another account" on the consent screen.
    pub not_you: &'static str,

    // ---- account chooser -----------------------------------------------
    /// Title and heading.
    pub chooser_title: &'static str,
    /// Below the heading: "to continue to {app}".
    pub chooser_to: &'static str,
    /// The button: "Continue as {email}".
    pub continue_as: &'static str,
    /// Link to `/login`.
    pub use_another_account: &'static str,

    // ---- signed out ----------------------------------------------------
    /// Title and heading.
    pub signed_out_title: &'static str,
    /// Below the heading.
    pub signed_out_text: &'static str,

    // ---- errors --------------------------------------------------------
    /// Expired link: heading.
    pub expired_title: &'static str,
    /// Expired link: what to do.
    pub expired_text: &'static str,
    /// Used link: heading.
    pub used_title: &'static str,
    /// Used link: what to do.
    pub used_text: &'static str,
    /// A code typed for a used request: heading.
    pub code_used_title: &'static str,
    /// A code typed for a used request: what to do.
    pub code_used_text: &'static str,
    /// The asking browser, after a sign-in on another device: heading.
    pub finished_title: &'static str,
    /// The asking browser, after a sign-in on another device: what now.
    pub finished_text: &'static str,
    /// Killed by wrong codes: heading.
    pub too_many_tries_title: &'static str,
    /// Killed by wrong codes: what to do.
    pub too_many_tries_text: &'static str,
    /// The asking browser after a wrong number on the other device: heading.
    pub stopped_title: &'static str,
    /// The asking browser after a wrong number: what to do.
    pub stopped_text: &'static str,
    /// Unknown link: heading.
    pub unknown_title: &'static str,
    /// Unknown link: what to do.
    pub unknown_text: &'static str,
    /// `/verify-email` without a link (no cookie): heading.
    pub no_link_title: &'static str,
    /// `/verify-email` without a link: what to do.
    pub no_link_text: &'static str,
    /// Wrong remote number: heading.
    pub wrong_number_title: &'static str,
    /// Wrong remote number: the sign-in was stopped.
    pub wrong_number_text: &'static str,
    /// Wrong code: heading.
    pub invalid_code_title: &'static str,
    /// Wrong code: what to do.
    pub invalid_code_text: &'static str,
    /// Rate limited: heading.
    pub rate_title: &'static str,
    /// Rate limited, with `Retry-After`: "… in {duration}."
    pub rate_text: &'static str,
    /// Rate limited, without `Retry-After`.
    pub rate_text_later: &'static str,
    /// Rate limited while the newest email still works: heading.
    pub rate_live_title: &'static str,
    /// Rate limited while the newest email still works: "… until {time}."
    pub rate_live_text: &'static str,
    /// When a new email may be asked for: "… in {duration}."
    pub rate_again_in: &'static str,
    /// Expired CSRF token: heading.
    pub csrf_title: &'static str,
    /// Expired CSRF token, no known way forward: what to do.
    pub csrf_text: &'static str,
    /// Expired CSRF token, with a link to the form again: what to do.
    pub csrf_text_retry: &'static str,
    /// 404: heading.
    pub not_found_title: &'static str,
    /// 404: text.
    pub not_found_text: &'static str,
    /// Other 4xx: heading.
    pub bad_request_title: &'static str,
    /// Other 4xx: text (the English detail follows, marked `lang="en"`).
    pub bad_request_text: &'static str,
    /// 5xx: heading.
    pub server_title: &'static str,
    /// 5xx: text.
    pub server_text: &'static str,
    /// "Reference: {reference}".
    pub reference: &'static str,
    /// Way forward: a new link for the same destination.
    pub send_new_link: &'static str,
    /// Way forward: back to the code entry.
    pub try_again: &'static str,
    /// Way forward: `/login` again.
    pub start_again: &'static str,
    /// Way forward: the page before.
    pub go_back: &'static str,
    /// Way forward after an expired form: the same form, fresh.
    pub open_form_again: &'static str,
    /// Way forward: the code entry of the email that still works.
    pub enter_code: &'static str,
    /// Way forward after a sign-in on another device: a new link here.
    pub sign_in_here_too: &'static str,
    /// Under "Send a new link": the address it goes to follows.
    pub new_link_goes_to: &'static str,
    /// Before the English detail of a bad request.
    pub developer_detail: &'static str,

    // ---- /_dev/mail ----------------------------------------------------
    /// Title and heading.
    pub dev_title: &'static str,
    /// What this page is.
    pub dev_intro: &'static str,
    /// No mail yet.
    pub dev_empty: &'static str,
    /// "To {email} · {time}".
    pub dev_to: &'static str,
    /// The link's button.
    pub dev_open_link: &'static str,
    /// Before the code.
    pub dev_code: &'static str,
    /// Summary of the text part.
    pub dev_text: &'static str,
    /// Summary of the HTML part.
    pub dev_html: &'static str,
}

impl Strings {
    /// `template` with `{app}` filled in.
    pub fn with_app(&self, template: &str, app: &str) -> String {
        fill(template, &[("app", app)])
    }

    /// A time span in words, rounded up to whole minutes (never promising
    /// less waiting than there is): "1 minute", "12 minutes", "2 hours".
    /// One formatter with the emails: [`crate::duration::say_duration`].
    pub fn duration_up(&self, seconds: i64) -> String {
        say_duration(&self.duration_words(), seconds, Rounding::Up)
    }

    /// A time span in words, rounded down to whole minutes (never promising
    /// more time than there is), at least one minute: what is left of a
    /// link on the check page, and a link's lifetime in its email.
    pub fn duration_down(&self, seconds: i64) -> String {
        say_duration(&self.duration_words(), seconds, Rounding::Down)
    }

    fn duration_words(&self) -> DurationWords<'static> {
        DurationWords {
            one_minute: self.one_minute,
            minutes: self.minutes,
            one_hour: self.one_hour,
            hours: self.hours,
        }
    }

    /// "Wrong code. 3 tries left." for a wrong code with `left` tries left.
    pub fn wrong_code(&self, left: i64) -> String {
        let tries = if left == 1 {
            self.tries_left_one.to_owned()
        } else {
            fill(self.tries_left, &[("n", &left.to_string())])
        };
        format!("{} {tries}", self.code_wrong)
    }

    /// What an app will see for each scope of `scope`, one line each (the
    /// consent screen, the apps on `/account`); scopes without words show
    /// nothing.
    pub fn scope_items(&self, scope: &crate::oauth::Scope) -> Vec<&'static str> {
        scope
            .iter()
            .filter_map(|s| match s {
                "openid" => Some(self.scope_openid),
                "email" => Some(self.scope_email),
                "profile" => Some(self.scope_profile),
                "offline_access" => Some(self.scope_offline),
                _ => None,
            })
            .collect()
    }

    /// "You will go back to {host}." for a redirect URI: its host, or the
    /// scheme of a native app's private-use URI.
    pub fn returns_to(&self, redirect_uri: &str) -> String {
        let host = url::Url::parse(redirect_uri)
            .ok()
            .map(|u| match u.host_str() {
                Some(h) if !h.is_empty() => h.to_owned(),
                _ => u.scheme().to_owned(),
            })
            .unwrap_or_default();
        fill(self.consent_returns_to, &[("host", &host)])
    }

    /// A unix time as people read it, in UTC: "14 March 2025, 09:05 UTC".
    pub fn date_time(&self, unix: i64) -> String {
        let Ok(t) = time::OffsetDateTime::from_unix_timestamp(unix) else {
            return String::new();
        };
        let month = self.months[usize::from(u8::from(t.month())) - 1];
        fill(
            self.date_time,
            &[
                ("day", &t.day().to_string()),
                ("month", month),
                ("year", &t.year().to_string()),
                ("time", &format!("{:02}:{:02}", t.hour(), t.minute())),
            ],
        )
    }

    /// "Firefox on Linux"-style description of a user agent, for people.
    pub fn describe_browser(&self, user_agent: Option<&str>) -> String {
        let ua = user_agent.unwrap_or("");
        let browser = [
            ("Edg/", "Edge"),
            ("OPR/", "Opera"),
            ("Firefox/", "Firefox"),
            ("Chrome/", "Chrome"),
            ("Safari/", "Safari"),
            ("curl/", "curl"),
        ]
        .iter()
        .find(|(needle, _)| ua.contains(needle))
        .map(|(_, name)| *name);
        let os = [
            ("Android", "Android"),
            ("iPhone", "iPhone"),
            ("iPad", "iPad"),
            ("Windows", "Windows"),
            ("Mac OS X", "macOS"),
            ("Linux", "Linux"),
        ]
        .iter()
        .find(|(needle, _)| ua.contains(needle))
        .map(|(_, name)| *name);
        match (browser, os) {
            (Some(b), Some(os)) => fill(self.browser_on_os, &[("browser", b), ("os", os)]),
            (Some(b), None) => b.to_owned(),
            (None, Some(os)) => fill(
                self.browser_on_os,
                &[("browser", self.unknown_browser), ("os", os)],
            ),
            (None, None) => self.unknown_browser.to_owned(),
        }
    }

    /// Why the email form did not take an address: empty, or not an address.
    pub fn email_error(&self, e: &crate::email::EmailError) -> &'static str {
        match e {
            crate::email::EmailError::Empty => self.email_error_empty,
            _ => self.email_error_invalid,
        }
    }

    /// "The link and the code expire in 15 minutes.", `seconds` from now
    /// (rounded down: never more time than there is).
    pub fn check_expires_in(&self, seconds: i64) -> String {
        fill(
            self.check_expires,
            &[("duration", &self.duration_down(seconds))],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::strings;

    #[test]
    fn the_placeholders_each_string_needs_are_there_in_every_language() {
        for lang in crate::locale::SUPPORTED {
            let s = strings(lang);
            let cases: &[(&str, &str, &[&str])] = &[
                ("login_title", s.login_title, &["{app}"]),
                ("check_sent", s.check_sent, &["{app}"]),
                ("check_expires", s.check_expires, &["{duration}"]),
                ("confirm_title", s.confirm_title, &["{app}"]),
                ("confirm_button", s.confirm_button, &["{app}"]),
                ("same_browser_text", s.same_browser_text, &["{app}"]),
                ("approved_text", s.approved_text, &["{app}"]),
                ("consent_title", s.consent_title, &["{app}"]),
                ("consent_will_see", s.consent_will_see, &["{app}"]),
                ("chooser_to", s.chooser_to, &["{app}"]),
                ("continue_as", s.continue_as, &["{email}"]),
                ("rate_text", s.rate_text, &["{duration}"]),
                ("reference", s.reference, &["{reference}"]),
                ("resend_countdown", s.resend_countdown, &["{s}"]),
                ("minutes", s.minutes, &["{n}"]),
                ("hours", s.hours, &["{n}"]),
                ("browser_on_os", s.browser_on_os, &["{browser}", "{os}"]),
                (
                    "date_time",
                    s.date_time,
                    &["{day}", "{month}", "{year}", "{time}"],
                ),
                ("dev_to", s.dev_to, &["{email}", "{time}"]),
                ("did_you_mean", s.did_you_mean, &["{email}"]),
                ("tries_left", s.tries_left, &["{n}"]),
                ("resent_at", s.resent_at, &["{time}"]),
                ("signed_in_as", s.signed_in_as, &["{email}"]),
                ("scope_email_is", s.scope_email_is, &["{email}"]),
                ("consent_returns_to", s.consent_returns_to, &["{host}"]),
                ("rate_live_text", s.rate_live_text, &["{time}"]),
                ("rate_again_in", s.rate_again_in, &["{duration}"]),
            ];
            for (key, text, needs) in cases {
                for n in *needs {
                    assert!(text.contains(n), "{lang}.{key} lacks {n}: {text}");
                }
            }
        }
    }

    #[test]
    fn durations_read_naturally_and_round_the_safe_way() {
        let en = strings("en");
        let up = [
            (1, "1 minute"),
            (60, "1 minute"),
            (61, "2 minutes"),
            (720, "12 minutes"),
            (3600, "1 hour"),
            (3601, "61 minutes"),
            (7200, "2 hours"),
            (7201, "2 hours 1 minute"),
        ];
        for (secs, want) in up {
            assert_eq!(en.duration_up(secs), want, "up {secs} s");
        }
        assert_eq!(en.duration_down(899), "14 minutes");
        assert_eq!(en.duration_down(0), "1 minute");
        assert_eq!(strings("de").duration_up(7200), "2 Stunden");
        assert_eq!(strings("fr").duration_up(1), "1 minute");
    }

    #[test]
    fn dates_and_browsers_are_said_in_the_page_language() {
        // 2025-03-14 09:05:00 UTC.
        let t = 1_741_943_100;
        assert_eq!(strings("en").date_time(t), "14 March 2025, 09:05 UTC");
        assert_eq!(strings("de").date_time(t), "14. März 2025, 09:05 UTC");
        assert_eq!(strings("fr").date_time(t), "14 mars 2025 à 09:05 UTC");
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(
            strings("en").describe_browser(Some(firefox)),
            "Firefox on Linux"
        );
        assert_eq!(
            strings("de").describe_browser(Some(firefox)),
            "Firefox unter Linux"
        );
        assert_eq!(
            strings("fr").describe_browser(Some(firefox)),
            "Firefox sous Linux"
        );
        assert_eq!(strings("en").describe_browser(None), "an unknown browser");
    }
}

#[cfg(test)]
mod consent_tests {
    use crate::i18n::strings;
    use crate::oauth::Scope;

    #[test]
    fn a_wrong_code_says_how_many_tries_are_left_one_said_apart() {
        let t = strings("en");
        assert_eq!(
            t.wrong_code(1),
            format!("{} {}", t.code_wrong, t.tries_left_one)
        );
        let three = crate::i18n::fill(t.tries_left, &[("n", "3")]);
        assert_eq!(t.wrong_code(3), format!("{} {three}", t.code_wrong));
    }

    #[test]
    fn the_consent_screen_says_what_each_known_scope_shares() {
        let t = strings("en");
        let scope = Scope::parse(Some("openid email offline_access"));
        assert_eq!(
            t.scope_items(&scope),
            [t.scope_openid, t.scope_email, t.scope_offline]
        );
    }

    #[test]
    fn the_way_back_names_the_host_or_a_native_apps_scheme() {
        let t = strings("en");
        let say = |host: &str| crate::i18n::fill(t.consent_returns_to, &[("host", host)]);
        assert_eq!(
            t.returns_to("https://notes.acme.example/cb"),
            say("notes.acme.example")
        );
        assert_eq!(t.returns_to("com.acme.notes:/cb"), say("com.acme.notes"));
        assert_eq!(t.returns_to("not a uri"), say(""));
    }
}

#[cfg(test)]
mod form_tests {
    use crate::email::EmailAddress;
    use crate::i18n::strings;

    #[test]
    fn the_email_form_says_empty_or_invalid_and_the_check_page_its_expiry() {
        let t = strings("en");
        let empty = EmailAddress::parse("  ").unwrap_err();
        assert_eq!(t.email_error(&empty), t.email_error_empty);
        let bad = EmailAddress::parse("jo@@x").unwrap_err();
        assert_eq!(t.email_error(&bad), t.email_error_invalid);
        let fill = crate::i18n::fill;
        let in_15 = fill(
            t.check_expires,
            &[("duration", &t.duration_down(15 * 60 + 59))],
        );
        assert_eq!(t.check_expires_in(15 * 60 + 59), in_15);
        assert!(!in_15.contains("{duration}"));
    }
}
