//! The words of passkeys (issue 15): the offer after an email sign-in, the
//! button on `/login`, the list on `/account`, their errors. One `const`
//! [`PasskeyStrings`] per language in this one file, so the section moves
//! as a whole wherever the page catalogues go.

/// The passkey strings of one language.
#[derive(Debug)]
pub struct PasskeyStrings {
    /// BCP 47 primary language tag.
    pub lang: &'static str,

    // ---- /login ---------------------------------------------------------
    /// The button next to the email form.
    pub sign_in_button: &'static str,
    /// Between the email form and the passkey button.
    pub or: &'static str,

    // ---- the offer after an email sign-in -------------------------------
    /// Title and heading.
    pub offer_title: &'static str,
    /// What a passkey does.
    pub offer_text: &'static str,
    /// The button that makes one.
    pub offer_create: &'static str,
    /// The button that goes on without one.
    pub offer_not_now: &'static str,
    /// Shown when the browser cannot make passkeys.
    pub offer_unsupported: &'static str,

    // ---- /account -------------------------------------------------------
    /// Heading of the list.
    pub list_title: &'static str,
    /// What passkeys are for, above the list.
    pub list_intro: &'static str,
    /// No passkey yet.
    pub list_empty: &'static str,
    /// "Add a passkey".
    pub add: &'static str,
    /// Label: when it was made.
    pub created: &'static str,
    /// Label: when it last signed in.
    pub last_used: &'static str,
    /// It never signed in yet.
    pub never_used: &'static str,
    /// Device kind: synced by a password manager.
    pub kind_synced: &'static str,
    /// Device kind: a security key.
    pub kind_security_key: &'static str,
    /// Device kind: one device only.
    pub kind_this_device: &'static str,
    /// Label of the name field.
    pub name_label: &'static str,
    /// Button: save the name.
    pub rename: &'static str,
    /// Button: delete it.
    pub delete: &'static str,
    /// After adding one.
    pub notice_added: &'static str,
    /// After deleting one.
    pub notice_deleted: &'static str,
    /// After renaming one.
    pub notice_renamed: &'static str,
    /// Method `passkey` in the history.
    pub method_passkey: &'static str,
    /// A link or code used after saying the passkey was lost.
    pub method_lost: &'static str,

    // ---- errors ---------------------------------------------------------
    /// Title of a failed passkey sign-in or registration.
    pub error_title: &'static str,
    /// A ceremony that is used, expired or another browser's.
    pub error_challenge: &'static str,
    /// An answer that did not verify.
    pub error_rejected: &'static str,
    /// An unknown passkey.
    pub error_unknown: &'static str,
    /// A disabled account.
    pub error_disabled: &'static str,
    /// An app without passkeys.
    pub error_off: &'static str,
    /// Registered already.
    pub error_duplicate: &'static str,
    /// The browser gave up or the person cancelled (the script says it).
    pub error_cancelled: &'static str,

    // ---- required_after_first_sign_in -----------------------------------
    /// Title: the app wants the passkey.
    pub required_title: &'static str,
    /// Why the link alone is not enough.
    pub required_text: &'static str,
    /// Button: sign in with a passkey instead.
    pub required_use_passkey: &'static str,
    /// Above the "lost" button.
    pub required_lost_text: &'static str,
    /// Button: I lost my passkey, let the email work.
    pub required_lost_button: &'static str,
}

/// English.
pub const EN: PasskeyStrings = PasskeyStrings {
    lang: "en",
    sign_in_button: "Sign in with a passkey",
    or: "or",
    offer_title: "Sign in faster next time on this device",
    offer_text: "Create a passkey and sign in with your fingerprint, face or screen lock instead of waiting for an email. Your email address keeps working on any other device.",
    offer_create: "Create passkey",
    offer_not_now: "Not now",
    offer_unsupported: "This browser cannot create passkeys.",
    list_title: "Passkeys",
    list_intro: "Passkeys sign you in with your fingerprint, face or screen lock, without an email.",
    list_empty: "You have no passkeys yet.",
    add: "Add a passkey",
    created: "Created",
    last_used: "Last used",
    never_used: "never",
    kind_synced: "Synced passkey",
    kind_security_key: "Security key",
    kind_this_device: "On one device only",
    name_label: "Name",
    rename: "Rename",
    delete: "Delete",
    notice_added: "Your passkey was created. Next time, sign in with it.",
    notice_deleted: "That passkey was deleted. It no longer signs you in.",
    notice_renamed: "The passkey was renamed.",
    method_passkey: "Passkey",
    method_lost: "Email (passkey lost)",
    error_title: "That passkey did not work",
    error_challenge: "This passkey request has expired, was already used, or was started in another browser. Go back and try again.",
    error_rejected: "Your passkey's answer could not be checked. Try again, or sign in with your email address.",
    error_unknown: "This passkey is not registered here any more. Sign in with your email address instead.",
    error_disabled: "This account is disabled.",
    error_off: "This app does not accept passkeys. Sign in with your email address.",
    error_duplicate: "This passkey is registered already.",
    error_cancelled: "No passkey was used. You can try again or use your email address.",
    required_title: "Sign in with your passkey",
    required_text: "{app} asks you to sign in with your passkey, now that you have one. The email alone is not enough.",
    required_use_passkey: "Sign in with a passkey",
    required_lost_text: "Lost the device your passkey was on?",
    required_lost_button: "I lost my passkey, continue with this email",
};

/// Deutsch.
pub const DE: PasskeyStrings = PasskeyStrings {
    lang: "de",
    sign_in_button: "Mit Passkey anmelden",
    or: "oder",
    offer_title: "Nächstes Mal auf diesem Gerät schneller anmelden",
    offer_text: "Erstellen Sie einen Passkey und melden Sie sich mit Fingerabdruck, Gesicht oder Bildschirmsperre an, statt auf eine E-Mail zu warten. Ihre E-Mail-Adresse funktioniert auf jedem anderen Gerät weiter.",
    offer_create: "Passkey erstellen",
    offer_not_now: "Jetzt nicht",
    offer_unsupported: "Dieser Browser kann keine Passkeys erstellen.",
    list_title: "Passkeys",
    list_intro: "Mit Passkeys melden Sie sich per Fingerabdruck, Gesicht oder Bildschirmsperre an, ganz ohne E-Mail.",
    list_empty: "Sie haben noch keine Passkeys.",
    add: "Passkey hinzufügen",
    created: "Erstellt",
    last_used: "Zuletzt benutzt",
    never_used: "nie",
    kind_synced: "Synchronisierter Passkey",
    kind_security_key: "Sicherheitsschlüssel",
    kind_this_device: "Nur auf einem Gerät",
    name_label: "Name",
    rename: "Umbenennen",
    delete: "Löschen",
    notice_added: "Ihr Passkey wurde erstellt. Melden Sie sich nächstes Mal damit an.",
    notice_deleted: "Der Passkey wurde gelöscht. Er meldet Sie nicht mehr an.",
    notice_renamed: "Der Passkey wurde umbenannt.",
    method_passkey: "Passkey",
    method_lost: "E-Mail (Passkey verloren)",
    error_title: "Der Passkey hat nicht funktioniert",
    error_challenge: "Diese Passkey-Anfrage ist abgelaufen, wurde schon benutzt oder in einem anderen Browser begonnen. Gehen Sie zurück und versuchen Sie es erneut.",
    error_rejected: "Die Antwort Ihres Passkeys ließ sich nicht prüfen. Versuchen Sie es erneut oder melden Sie sich mit Ihrer E-Mail-Adresse an.",
    error_unknown: "Dieser Passkey ist hier nicht mehr registriert. Melden Sie sich stattdessen mit Ihrer E-Mail-Adresse an.",
    error_disabled: "Dieses Konto ist gesperrt.",
    error_off: "Diese App nimmt keine Passkeys an. Melden Sie sich mit Ihrer E-Mail-Adresse an.",
    error_duplicate: "Dieser Passkey ist schon registriert.",
    error_cancelled: "Es wurde kein Passkey benutzt. Versuchen Sie es erneut oder nehmen Sie Ihre E-Mail-Adresse.",
    required_title: "Mit Ihrem Passkey anmelden",
    required_text: "{app} bittet Sie, sich mit Ihrem Passkey anzumelden, da Sie jetzt einen haben. Die E-Mail allein reicht nicht.",
    required_use_passkey: "Mit Passkey anmelden",
    required_lost_text: "Haben Sie das Gerät mit Ihrem Passkey verloren?",
    required_lost_button: "Passkey verloren, mit dieser E-Mail weiter",
};

/// Français.
pub const FR: PasskeyStrings = PasskeyStrings {
    lang: "fr",
    sign_in_button: "Se connecter avec une clé d’accès",
    or: "ou",
    offer_title: "Connectez-vous plus vite la prochaine fois sur cet appareil",
    offer_text: "Créez une clé d’accès et connectez-vous avec votre empreinte, votre visage ou le verrouillage de l’écran au lieu d’attendre un e-mail. Votre adresse e-mail reste valable sur tout autre appareil.",
    offer_create: "Créer une clé d’accès",
    offer_not_now: "Pas maintenant",
    offer_unsupported: "Ce navigateur ne peut pas créer de clé d’accès.",
    list_title: "Clés d’accès",
    list_intro: "Les clés d’accès vous connectent avec votre empreinte, votre visage ou le verrouillage de l’écran, sans e-mail.",
    list_empty: "Vous n’avez pas encore de clé d’accès.",
    add: "Ajouter une clé d’accès",
    created: "Créée",
    last_used: "Dernière utilisation",
    never_used: "jamais",
    kind_synced: "Clé d’accès synchronisée",
    kind_security_key: "Clé de sécurité",
    kind_this_device: "Sur un seul appareil",
    name_label: "Nom",
    rename: "Renommer",
    delete: "Supprimer",
    notice_added: "Votre clé d’accès a été créée. La prochaine fois, connectez-vous avec elle.",
    notice_deleted: "Cette clé d’accès a été supprimée. Elle ne vous connecte plus.",
    notice_renamed: "La clé d’accès a été renommée.",
    method_passkey: "Clé d’accès",
    method_lost: "E-mail (clé d’accès perdue)",
    error_title: "Cette clé d’accès n’a pas fonctionné",
    error_challenge: "Cette demande de clé d’accès a expiré, a déjà servi ou a été commencée dans un autre navigateur. Revenez en arrière et réessayez.",
    error_rejected: "La réponse de votre clé d’accès n’a pas pu être vérifiée. Réessayez, ou connectez-vous avec votre adresse e-mail.",
    error_unknown: "Cette clé d’accès n’est plus enregistrée ici. Connectez-vous plutôt avec votre adresse e-mail.",
    error_disabled: "Ce compte est désactivé.",
    error_off: "Cette application n’accepte pas les clés d’accès. Connectez-vous avec votre adresse e-mail.",
    error_duplicate: "Cette clé d’accès est déjà enregistrée.",
    error_cancelled: "Aucune clé d’accès n’a été utilisée. Réessayez ou utilisez votre adresse e-mail.",
    required_title: "Connectez-vous avec votre clé d’accès",
    required_text: "{app} vous demande de vous connecter avec votre clé d’accès, maintenant que vous en avez une. L’e-mail seul ne suffit pas.",
    required_use_passkey: "Se connecter avec une clé d’accès",
    required_lost_text: "Vous avez perdu l’appareil qui portait votre clé d’accès ?",
    required_lost_button: "J’ai perdu ma clé d’accès, continuer avec cet e-mail",
};

/// The passkey strings for a primary language tag, English when unsupported.
pub fn strings(lang: &str) -> &'static PasskeyStrings {
    match lang {
        "de" => &DE,
        "fr" => &FR,
        _ => &EN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_language_has_passkey_strings_named_after_it() {
        for lang in postern_core::locale::SUPPORTED {
            assert_eq!(strings(lang).lang, *lang);
            assert!(strings(lang).required_text.contains("{app}"));
        }
    }
}
