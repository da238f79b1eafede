//! French.

use super::Strings;

/// French strings.
pub const STRINGS: Strings = Strings {
    lang: "fr",
    sign_in_to: "Connexion à {app}",
    sign_in_subject: "Connexion à {app} : {code}",
    open_link: "Ouvrez ce lien pour vous connecter à {app} :",
    press_button: "Cliquez sur le bouton ci-dessous pour vous connecter à {app}.",
    button: "Se connecter",
    enter_code: "Ou saisissez ce code sur la page de connexion :",
    link_fallback: "Si le bouton ne fonctionne pas, copiez ce lien dans votre navigateur :",
    expires_in: "Ce lien expirera dans {duration}.",
    one_minute: "1 minute",
    minutes: "{n} minutes",
    one_hour: "1 heure",
    hours: "{n} heures",
    ignore: "Si vous n'êtes pas à l'origine de cette demande, vous pouvez ignorer cet e-mail en toute sécurité.",
    no_account: "Quelqu'un a demandé à se connecter à {app} en tant que {email}, mais il n'existe aucun compte pour cette adresse sur {app}.",
    own_account: "votre compte Postern",
    no_account_help: "Si vous pensez devoir y avoir accès, contactez les responsables de {app}.",
};
