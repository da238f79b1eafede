//! Pages de compte en français.

use super::AccountStrings;

/// Français.
pub const STRINGS: AccountStrings = AccountStrings {
    lang: "fr",

    title: "Votre compte",
    signed_in_as: "Connecté en tant que {email}",
    sessions_title: "Où vous êtes connecté",
    this_browser: "Ce navigateur",
    through_app: "via {app}",
    ip_address: "Adresse IP {ip}",
    ip_address_place: "Adresse IP {ip}, près de {place}",
    last_seen: "Dernière activité",
    signed_in_at: "Connexion",
    sign_out: "Se déconnecter",
    sign_out_everywhere: "Se déconnecter partout",
    sign_out_everywhere_text: "Met fin à chaque session de ce compte sur tous les appareils, et les applications ne restent plus connectées pour vous.",
    history_title: "Connexions récentes",
    history_empty: "Aucune connexion pour l’instant.",
    method_link: "Lien par e-mail",
    method_code: "Code",
    method_admin_link: "Lien d’un administrateur",
    outcome_success: "Connecté",
    outcome_failed: "Refusé",
    removed_app: "une application supprimée",
    own_account_app: "Compte Postern",
    apps_title: "Applications autorisées",
    apps_intro: "Ces applications peuvent voir ce que vous leur avez permis. Révoquer met fin à leur accès ; elles vous redemanderont la prochaine fois.",
    apps_empty: "Vous n’avez encore autorisé aucune application.",
    revoke: "Révoquer",
    notice_signed_out: "Cette session a été déconnectée. Son navigateur devra se reconnecter.",
    notice_revoked: "{app} n’a plus accès à votre compte. L’application vous redemandera la prochaine fois.",
    delete_title: "Supprimer mon compte",
    delete_text: "Supprime votre adresse, vos sessions, votre historique de connexion et les accès donnés aux applications. C’est définitif.",

    delete_confirm_title: "Supprimer {email} ?",
    delete_confirm_text: "Vos sessions prennent fin sur tous les appareils, les applications perdent leur accès et Postern oublie votre historique de connexion. Une connexion ultérieure crée un nouveau compte.",
    delete_confirm_button: "Oui, supprimer mon compte",
    cancel: "Annuler",
    deleted_title: "Votre compte a été supprimé",
    deleted_text: "Postern ne connaît plus votre adresse, vos sessions ni votre historique.",

    logout_title: "Se déconnecter de Postern ?",
    logout_text: "Une application ou un lien demande à vous déconnecter. Si ce n’est pas vous, fermez cette page.",
    logout_accounts: "Cela déconnecte tous les comptes de ce navigateur :",
    logout_button: "Se déconnecter",
};
