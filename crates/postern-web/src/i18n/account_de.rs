//! Deutsche Kontoseiten.

use super::AccountStrings;

/// Deutsch.
pub const STRINGS: AccountStrings = AccountStrings {
    lang: "de",

    title: "Ihr Konto",
    signed_in_as: "Angemeldet als {email}",
    sessions_title: "Wo Sie angemeldet sind",
    this_browser: "Dieser Browser",
    through_app: "über {app}",
    ip_address: "IP-Adresse {ip}",
    ip_address_place: "IP-Adresse {ip}, in der Nähe von {place}",
    last_seen: "Zuletzt aktiv",
    signed_in_at: "Angemeldet",
    sign_out: "Abmelden",
    sign_out_everywhere: "Überall abmelden",
    sign_out_everywhere_text: "Beendet jede Sitzung dieses Kontos auf allen Geräten, und Apps bleiben nicht länger für Sie angemeldet.",
    history_title: "Letzte Anmeldungen",
    history_empty: "Noch keine Anmeldungen.",
    method_link: "Link per E-Mail",
    method_code: "Code",
    method_admin_link: "Link von der Verwaltung",
    outcome_success: "Angemeldet",
    outcome_failed: "Abgelehnt",
    removed_app: "eine entfernte App",
    own_account_app: "Postern-Konto",
    apps_title: "Apps, denen Sie Zugriff gegeben haben",
    apps_intro: "Diese Apps dürfen sehen, was Sie ihnen erlaubt haben. Widerrufen beendet ihren Zugriff; beim nächsten Mal fragen sie erneut.",
    apps_empty: "Sie haben noch keiner App Zugriff gegeben.",
    revoke: "Widerrufen",
    notice_signed_out: "Diese Sitzung wurde abgemeldet. Ihr Browser muss sich neu anmelden.",
    notice_revoked: "{app} hat keinen Zugriff mehr auf Ihr Konto. Beim nächsten Mal fragt die Anwendung erneut.",
    delete_title: "Mein Konto löschen",
    delete_text: "Löscht Ihre Adresse, Ihre Sitzungen, Ihren Anmeldeverlauf und den Zugriff, den Sie Apps gegeben haben. Das lässt sich nicht rückgängig machen.",

    delete_confirm_title: "{email} löschen?",
    delete_confirm_text: "Ihre Sitzungen enden auf allen Geräten, Apps verlieren ihren Zugriff, und Postern vergisst Ihren Anmeldeverlauf. Wenn Sie sich später wieder anmelden, entsteht ein neues Konto.",
    delete_confirm_button: "Ja, mein Konto löschen",
    cancel: "Abbrechen",
    deleted_title: "Ihr Konto wurde gelöscht",
    deleted_text: "Postern kennt Ihre Adresse, Ihre Sitzungen und Ihren Verlauf nicht mehr.",

    logout_title: "Von Postern abmelden?",
    logout_text: "Eine App oder ein Link möchte Sie abmelden. Wenn Sie das nicht wollten, schließen Sie diese Seite.",
    logout_accounts: "Damit melden Sie jedes Konto in diesem Browser ab:",
    logout_button: "Abmelden",
};
