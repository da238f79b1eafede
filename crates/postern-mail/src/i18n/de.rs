//! German.

use super::Strings;

/// German strings.
pub const STRINGS: Strings = Strings {
    lang: "de",
    sign_in_to: "Bei {app} anmelden",
    sign_in_subject: "Bei {app} anmelden: {code}",
    open_link: "Öffnen Sie diesen Link, um sich bei {app} anzumelden:",
    press_button: "Klicken Sie auf die Schaltfläche unten, um sich bei {app} anzumelden.",
    button: "Anmelden",
    enter_code: "Oder geben Sie diesen Code auf der Anmeldeseite ein:",
    link_fallback: "Falls die Schaltfläche nicht funktioniert, kopieren Sie diesen Link in Ihren Browser:",
    expires_in: "Dieser Link läuft in {duration} ab.",
    one_minute: "1 Minute",
    minutes: "{n} Minuten",
    one_hour: "1 Stunde",
    hours: "{n} Stunden",
    ignore: "Falls Sie das nicht angefordert haben, können Sie diese E-Mail einfach ignorieren.",
    no_account: "Jemand wollte sich als {email} bei {app} anmelden, aber für diese Adresse gibt es bei {app} kein Konto.",
    own_account: "Ihrem Postern-Konto",
    no_account_help: "Wenn Sie glauben, dass Sie Zugang haben sollten, wenden Sie sich an die Betreiber von {app}.",
};
