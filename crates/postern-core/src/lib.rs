//! Postern's domain: the types and rules of passwordless sign-in, with no
//! knowledge of HTTP or SQL. Everything here is unit-testable without I/O.

pub mod app;
pub mod brand;
pub mod clock;
pub mod code;
pub mod crypto;
pub mod duration;
pub mod email;
pub mod html;
pub mod i18n;
pub mod ids;
pub mod jose;
pub mod locale;
pub mod net;
pub mod oauth;
pub mod typo;

pub use app::{
    App, AppSettings, Branding, ConsentMode, DevicePolicy, IdTokenAlg, PasskeyPolicy, SubjectType,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use crypto::{MasterKey, Secrets};
pub use email::{EmailAddress, EmailError};
pub use ids::{ClientId, IdError, LoginId, SessionId, Subject};
